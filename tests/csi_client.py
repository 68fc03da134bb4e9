"""A second, independent CSI client for tests/csi_test.ts: Python's grpcio with stubs that
grpc_tools compiled from the repository's csi.proto (csi_pb2, csi_pb2_grpc in the working
folder). Walks CreateVolume -> NodePublishVolume -> files through the mount ->
NodeGetVolumeStats -> ControllerExpandVolume -> NodeUnpublishVolume -> DeleteVolume, with error
codes, and exits non-zero on the first surprise.

Usage: python3 csi_client.py SOCKET TARGET_PATH RUNC_BUNDLE RUNC_ID
(the bundle's /data is bound to TARGET_PATH: a container reads and writes through the mount)
"""

import os
import subprocess
import sys

import grpc

import csi_pb2 as pb
import csi_pb2_grpc as rpc

MiB = 1 << 20


def expect_code(code, fn, *args):
    try:
        fn(*args, timeout=120)
    except grpc.RpcError as err:
        if err.code() != code:
            raise AssertionError(f"expected {code}, got {err.code()}: {err.details()}")
        return
    raise AssertionError(f"expected {code}, got success")


def main():
    sock, target, bundle, container = sys.argv[1:5]
    channel = grpc.insecure_channel(f"unix://{sock}")
    identity = rpc.IdentityStub(channel)
    controller = rpc.ControllerStub(channel)
    node = rpc.NodeStub(channel)

    assert identity.GetPluginInfo(pb.GetPluginInfoRequest()).name == "csi.slayerfs.io"
    assert identity.Probe(pb.ProbeRequest()).ready.value

    cap = pb.VolumeCapability(
        mount=pb.VolumeCapability.MountVolume(),
        access_mode=pb.VolumeCapability.AccessMode(
            mode=pb.VolumeCapability.AccessMode.MULTI_NODE_MULTI_WRITER
        ),
    )
    # Secrets travel with the calls (S3 keys here); the driver must never log them.
    secrets = {"access-key": "AKIA-s3cr3t", "secret-key": "s3cr3t-value"}
    req = pb.CreateVolumeRequest(
        name="pvc-py",
        capacity_range=pb.CapacityRange(required_bytes=8 * MiB),
        volume_capabilities=[cap],
        secrets=secrets,
    )
    vol = controller.CreateVolume(req, timeout=120).volume
    assert vol.volume_id == "pvc-py" and vol.capacity_bytes == 8 * MiB, vol
    assert controller.CreateVolume(req, timeout=120).volume == vol
    other = pb.CreateVolumeRequest()
    other.CopyFrom(req)
    other.capacity_range.required_bytes = 1 * MiB
    expect_code(grpc.StatusCode.ALREADY_EXISTS, controller.CreateVolume, other)
    expect_code(
        grpc.StatusCode.INVALID_ARGUMENT,
        controller.CreateVolume,
        pb.CreateVolumeRequest(name="pvc-py-2"),
    )

    publish = pb.NodePublishVolumeRequest(
        volume_id=vol.volume_id, target_path=target, volume_capability=cap, secrets=secrets
    )
    os.makedirs(os.path.dirname(target), exist_ok=True)
    node.NodePublishVolume(publish, timeout=120)
    node.NodePublishVolume(publish, timeout=120)
    assert os.path.ismount(target), "a mount at the target"
    with open(os.path.join(target, "hello"), "w") as f:
        f.write("hello-from-python")
    with open(os.path.join(target, "hello")) as f:
        print(f"published: {f.read()}", flush=True)
    ran = subprocess.run(
        ["runc", "run", "--bundle", bundle, container],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ran.returncode == 0, ran.stderr
    print(f"container: {ran.stdout.strip()}", flush=True)
    with open(os.path.join(target, "hello")) as f:
        print(f"after: {f.read().replace(chr(10), '')}", flush=True)
    expect_code(
        grpc.StatusCode.INVALID_ARGUMENT,
        node.NodePublishVolume,
        pb.NodePublishVolumeRequest(volume_id=vol.volume_id, volume_capability=cap),
    )

    stats = node.NodeGetVolumeStats(
        pb.NodeGetVolumeStatsRequest(volume_id=vol.volume_id, volume_path=target), timeout=120
    )
    by_unit = {u.unit: u for u in stats.usage}
    assert by_unit[pb.VolumeUsage.BYTES].total == 8 * MiB, stats
    assert by_unit[pb.VolumeUsage.BYTES].used >= len("hello-from-python"), stats
    expect_code(
        grpc.StatusCode.NOT_FOUND,
        node.NodeGetVolumeStats,
        pb.NodeGetVolumeStatsRequest(volume_id="nope", volume_path=target),
    )

    grown = controller.ControllerExpandVolume(
        pb.ControllerExpandVolumeRequest(
            volume_id=vol.volume_id,
            capacity_range=pb.CapacityRange(required_bytes=32 * MiB),
            secrets=secrets,
        ),
        timeout=120,
    )
    assert grown.capacity_bytes == 32 * MiB and not grown.node_expansion_required, grown

    unpublish = pb.NodeUnpublishVolumeRequest(volume_id=vol.volume_id, target_path=target)
    node.NodeUnpublishVolume(unpublish, timeout=120)
    node.NodeUnpublishVolume(unpublish, timeout=120)
    assert not os.path.ismount(target), "no mount left"
    delete = pb.DeleteVolumeRequest(volume_id=vol.volume_id, secrets=secrets)
    controller.DeleteVolume(delete, timeout=120)
    controller.DeleteVolume(delete, timeout=120)
    expect_code(
        grpc.StatusCode.NOT_FOUND,
        controller.ValidateVolumeCapabilities,
        pb.ValidateVolumeCapabilitiesRequest(volume_id=vol.volume_id, volume_capabilities=[cap]),
    )
    print("done", flush=True)


if __name__ == "__main__":
    main()
