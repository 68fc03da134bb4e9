import { ok } from "node:assert/strict";
import { statFreeSpace } from "./free_space.ts";

Deno.test("statFreeSpace() agrees with df", async () => {
  const { free, total } = await statFreeSpace("/tmp");
  ok(total > 0 && free >= 0 && free <= total);
  const out = await new Deno.Command("df", { args: ["-Pk", "/tmp"] }).output();
  const dfTotal = Number(new TextDecoder().decode(out.stdout).split("\n")[1]!.split(/\s+/)[1]) *
    1024;
  ok(Math.abs(dfTotal - total) / total < 0.01, `${total} vs df ${dfTotal}`);
});
