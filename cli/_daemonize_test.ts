import { equal } from "node:assert/strict";
import { formatLogRecord } from "../core/log.ts";
import type { LogLevel } from "../core/log.ts";
import { failureReason } from "./_daemonize.ts";

function record(level: LogLevel, category: string[], message: string): string {
  return formatLogRecord({
    category: ["slayerfs", ...category],
    level,
    message: [message],
    rawMessage: message,
    timestamp: 0,
    properties: {},
  });
}

Deno.test("failureReason() takes the CLI's last error line as it is", () => {
  const log = record("info", ["daemon"], "Serving") +
    "fuse: some libfuse chatter\n" +
    'slayerfs: No volume in "mem://x": run slayerfs format first\n';
  equal(failureReason(log), 'No volume in "mem://x": run slayerfs format first');
  equal(failureReason('slayerfs: "/mnt/x" is already mounted\n'), '"/mnt/x" is already mounted');
  equal(
    failureReason("slayerfs: SQLITE_NOTADB: file is not a database"),
    "SQLITE_NOTADB: file is not a database",
  );
});

Deno.test("failureReason() strips a log record's level and category", () => {
  equal(failureReason(record("error", ["daemon"], "Unmount failed: busy")), "Unmount failed: busy");
  equal(failureReason(record("info", ["daemon"], "Stopped")), "Stopped");
  equal(failureReason(record("warning", ["cache", "disk"], "Disk full")), "Disk full");
});

Deno.test("failureReason() is undefined without a slayerfs: line", () => {
  equal(failureReason(""), undefined);
  equal(failureReason("error: Uncaught (in promise) Error\n    at main\n"), undefined);
});

Deno.test("failureReason() takes a JSON record's message (--log-format json)", () => {
  const json = '{"time":"t","level":"error","category":"daemon","message":"Mount failed: busy"}\n';
  equal(failureReason(json), "Mount failed: busy");
  // The CLI's own last line wins over earlier records.
  equal(failureReason(`${json}slayerfs: Cannot mount\n`), "Cannot mount");
  equal(failureReason("{not json\n"), undefined);
});
