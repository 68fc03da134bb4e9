/**
 * A CPU profile of a running daemon, on request: `slayerfs doctor` writes a request file beside
 * the mount's state file (`run/<mountpoint>.profile-request.json`, owner-only like the run folder)
 * and sends the daemon `SIGUSR2`; the daemon profiles its JS thread with V8's sampling profiler
 * (through `node:inspector`'s in-process `Session`) for the seconds asked, and writes the profile
 * (`.cpuprofile` JSON, the format Chrome DevTools and speedscope open) to
 * `run/<mountpoint>.cpuprofile`, or `{"error": ...}` when it could not.
 *
 * The daemon advertises the signal in its state file (`profiler`), so that a daemon without it
 * (whose default action for `SIGUSR2` is to die) is never sent one.
 *
 * @module
 */

import { getLog } from "../core/log.ts";
import { PRIVATE_FILE_MODE } from "../core/_private_fs.ts";
import { describe } from "./_errors.ts";
import { stateFile } from "./_state.ts";

const log = getLog("daemon");

/** The signal that starts a profile. */
export const PROFILE_SIGNAL = "SIGUSR2";
/** The longest profile a request may ask for (seconds). */
export const MAX_PROFILE_SECONDS = 600;

/** The request file of the daemon serving `mnt`: `{"seconds": N}`. */
export function profileRequestFile(mnt: string): string {
  return stateFile(mnt).replace(/\.json$/, ".profile-request.json");
}

/** Where the daemon serving `mnt` writes the profile. */
export function profileOutputFile(mnt: string): string {
  return stateFile(mnt).replace(/\.json$/, ".cpuprofile");
}

type Post = (method: string, params?: Record<string, unknown>) => Promise<unknown>;

/** Profiles this process's JS thread for `seconds`; returns the `.cpuprofile` object. */
export async function cpuProfile(seconds: number): Promise<unknown> {
  const { Session } = await import("node:inspector");
  const session = new Session();
  session.connect();
  const post: Post = (method, params = {}) =>
    new Promise((res, rej) => session.post(method, params, (e, r) => e ? rej(e) : res(r)));
  try {
    await post("Profiler.enable");
    await post("Profiler.setSamplingInterval", { interval: 1000 }); // µs
    await post("Profiler.start");
    await new Promise((r) => setTimeout(r, seconds * 1000));
    const { profile } = await post("Profiler.stop") as { profile: unknown };
    await post("Profiler.disable");
    return profile;
  } finally {
    session.disconnect();
  }
}

async function writePrivate(path: string, text: string): Promise<void> {
  await Deno.writeTextFile(`${path}.tmp`, text, { mode: PRIVATE_FILE_MODE });
  await Deno.rename(`${path}.tmp`, path);
}

/**
 * Answers profile requests for the mount at `mnt` on {@linkcode PROFILE_SIGNAL} (one at a time).
 * Returns a function that stops listening.
 */
export function answerProfileRequests(mnt: string): () => void {
  let busy = false;
  const onSignal = async () => {
    if (busy) return;
    busy = true;
    const out = profileOutputFile(mnt);
    try {
      const req = JSON.parse(await Deno.readTextFile(profileRequestFile(mnt)));
      await Deno.remove(profileRequestFile(mnt)).catch(() => {});
      const seconds = Math.min(MAX_PROFILE_SECONDS, Math.max(0.1, Number(req.seconds) || 10));
      log.info("Profiling the CPU for {seconds} s", { seconds });
      const profile = await cpuProfile(seconds);
      await writePrivate(out, JSON.stringify(profile));
      log.info("Wrote a CPU profile to {path}", { path: out });
    } catch (error) {
      log.warn("A CPU profile failed: {reason}", { reason: describe(error), error });
      await writePrivate(out, JSON.stringify({ error: describe(error) })).catch(() => {});
    } finally {
      busy = false;
    }
  };
  Deno.addSignalListener(PROFILE_SIGNAL, onSignal);
  return () => Deno.removeSignalListener(PROFILE_SIGNAL, onSignal);
}
