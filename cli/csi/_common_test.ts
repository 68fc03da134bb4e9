import assert from "node:assert/strict";
import { metaFor, readOnlyMode, unsupported, validVolumeId, volumeIdFor } from "./_common.ts";
import { parseVolumeOptions } from "../_docker_volumes.ts";

Deno.test("volumeIdFor() keeps a safe name and hashes any other", async () => {
  assert.equal(await volumeIdFor("pvc-5f1e-42"), "pvc-5f1e-42");
  const odd = await volumeIdFor("my volume/../x");
  assert.match(odd, /^my-volume-..-x-[0-9a-f]{16}$/);
  assert.equal(await volumeIdFor("my volume/../x"), odd, "the same name gives the same id");
  assert.notEqual(await volumeIdFor("my volume/../y"), odd);
  assert.ok(validVolumeId(odd) && validVolumeId(await volumeIdFor("x".repeat(300))));
  assert.ok(!validVolumeId("../etc") && !validVolumeId(".records") && !validVolumeId(""));
});

Deno.test("unsupported() refuses block volumes, unknown modes and other filesystems", () => {
  const mount = (mode: string, fs_type = "") => ({ mount: { fs_type }, access_mode: { mode } });
  assert.equal(unsupported(mount("MULTI_NODE_MULTI_WRITER")), undefined);
  assert.equal(unsupported(mount("MULTI_NODE_READER_ONLY", "slayerfs")), undefined);
  assert.match(unsupported(mount("UNKNOWN"))!, /access mode UNKNOWN/);
  assert.match(unsupported(mount("SINGLE_NODE_WRITER", "ext4"))!, /fs_type "ext4"/);
  assert.match(unsupported({ block: {}, access_mode: { mode: "SINGLE_NODE_WRITER" } })!, /block/);
  assert.ok(readOnlyMode(mount("MULTI_NODE_READER_ONLY")));
  assert.ok(!readOnlyMode(mount("MULTI_NODE_MULTI_WRITER")));
});

Deno.test("metaFor() takes the secret metaurl before --meta, and needs one", () => {
  assert.equal(metaFor({ metaurl: "redis://:pw@h/1" }, "sqlite3:///a.db"), "redis://:pw@h/1");
  assert.equal(metaFor({}, "sqlite3:///a.db"), "sqlite3:///a.db");
  assert.throws(() => metaFor(undefined, undefined), /no metadata URL/);
});

Deno.test("parseVolumeOptions() reads docker volume create -o options", () => {
  assert.deepEqual(
    parseVolumeOptions({ capacity: "1G", inodes: "1000", ro: "true", meta: "redis://h:6379/2" }),
    { capacity: 2 ** 30, inodes: 1000, ro: true, meta: "redis://h:6379/2" },
  );
  assert.deepEqual(parseVolumeOptions(null), {});
  assert.deepEqual(parseVolumeOptions({ ro: "false" }), { ro: false });
  assert.throws(() => parseVolumeOptions({ capacity: "lots" }), /Invalid capacity "lots"/);
  assert.throws(() => parseVolumeOptions({ inodes: "0" }), /Invalid inodes "0"/);
  assert.throws(() => parseVolumeOptions({ ro: "maybe" }), /Invalid ro "maybe"/);
  assert.throws(() => parseVolumeOptions({ meta: "nope" }), /Invalid meta "nope"/);
  assert.throws(() => parseVolumeOptions({ colour: "red" }), /Unknown option "colour"/);
});

Deno.test("DockerVolumes scope: global on a shared engine, local on SQLite", async () => {
  const { DockerVolumes } = await import("../_docker_volumes.ts");
  const root = await Deno.makeTempDir();
  try {
    for (
      const [url, scope] of [
        ["redis://10.0.0.5:6379/1", "global"],
        ["postgres://u@db:5432/vols", "global"],
        ["etcd://10.0.0.5:2379/vols", "global"],
        ["sqlite3:///var/lib/slayerfs/meta.db", "local"],
      ]
    ) {
      assert.equal((await DockerVolumes.open(url!, root)).scope, scope, url);
    }
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("redact() hides secret values and URL passwords from error messages", async () => {
  const { toStatus } = await import("./_common.ts");
  const { redact } = await import("../_subvolumes.ts");
  assert.equal(
    redact('Cannot open "redis://:hunter2@h:6379/1" with key AKIA1', ["AKIA1"]),
    'Cannot open "redis://:***@h:6379/1" with key ***',
  );
  assert.equal(redact("postgres://u:pw@db/x"), "postgres://u:***@db/x");
  assert.equal(redact("sqlite3:///a/b.db"), "sqlite3:///a/b.db");
  assert.deepEqual(toStatus(new Error("s3cr3t leaked"), ["s3cr3t"]), {
    code: 13,
    details: "*** leaked",
  });
});
