// Captions: whose streams are read, how lines are keyed, merged and kept.

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { ATTR_SEGMENT_ID, ATTR_TRANSCRIPTION_FINAL } from "../src/contract";
import {
  CaptionLog,
  type CaptionStream,
  type Line,
  MAX_LINES,
  lineKey,
  readInto,
  trusted,
} from "../src/listener/captions";

function stream(chunks: string[], attributes: Record<string, string> = {}): CaptionStream {
  return {
    info: { attributes },
    async *[Symbol.asyncIterator]() {
      yield* chunks;
    },
  };
}

const line = (): Line => ({ key: "k", speaker: "host", who: "Host", text: "", final: false });

describe("whose captions count", () => {
  test("the host's, and the caller's who holds the floor; nobody else's", () => {
    assert.equal(trusted("host", "host", { state: "free" }), true);
    assert.equal(trusted("kai", "host", { state: "held", holder: "kai" }), true);
    assert.equal(trusted("yui", "host", { state: "held", holder: "kai" }), false);
    assert.equal(trusted("kai", "host", { state: "free", holder: "kai" }), false);
    assert.equal(trusted("kai", "host", { state: "free" }), false);
  });
});

describe("keys", () => {
  test("by sender and segment: a caller reusing the host's segment id gets a line of their own", () => {
    assert.equal(lineKey("host", "SG_1", 1), lineKey("host", "SG_1", 2));
    assert.notEqual(lineKey("kai", "SG_1", 1), lineKey("host", "SG_1", 1));
    assert.notEqual(lineKey("host", "SG_1", 1), lineKey("host", "SG_2", 1));
  });

  test("a stream without a segment id is a line of its own", () => {
    assert.notEqual(lineKey("host", undefined, 1), lineKey("host", undefined, 2));
  });
});

describe("the log", () => {
  test("a known key is the same line; a new one is added at the end", () => {
    const log = new CaptionLog();
    const a = log.open("a", "host", "Host");
    assert.equal(a.added, true);
    const again = log.open("a", "host", "Host");
    assert.equal(again.added, false);
    assert.equal(again.line, a.line);
    log.open("b", "caller", "Kai");
    assert.deepEqual(
      log.all().map((l) => l.key),
      ["a", "b"],
    );
  });

  test(`keeps the last ${MAX_LINES} lines, dropping the oldest`, () => {
    const log = new CaptionLog();
    for (let i = 0; i < MAX_LINES; i++)
      assert.deepEqual(log.open(`l${i}`, "host", "Host").evicted, []);
    const { evicted } = log.open("new", "host", "Host");
    assert.deepEqual(evicted, ["l0"]);
    assert.equal(log.all().length, MAX_LINES);
    assert.equal(log.has("l0"), false);
    assert.equal(log.all().at(-1)?.key, "new");
  });
});

describe("reading a stream", () => {
  test("its chunks add up to the segment's text; final when the stream says so", async () => {
    const l = line();
    const seen: string[] = [];
    await readInto(
      stream(["Good ", "evening", "!"], { [ATTR_TRANSCRIPTION_FINAL]: "true" }),
      l,
      (x) => seen.push(x.text),
    );
    assert.equal(l.text, "Good evening!");
    assert.deepEqual(seen.slice(0, 3), ["Good ", "Good evening", "Good evening!"]);
    assert.equal(l.final, true);
  });

  test("not final unless said", async () => {
    const l = line();
    await readInto(stream(["Hi"], { [ATTR_SEGMENT_ID]: "SG_1" }), l, () => {});
    assert.equal(l.final, false);
  });

  test("the same segment sent again starts the line over", async () => {
    const l = line();
    await readInto(stream(["Good eve"]), l, () => {});
    await readInto(stream(["Good evening, Osaka."]), l, () => {});
    assert.equal(l.text, "Good evening, Osaka.");
  });
});
