// Push-to-talk's press and release logic, with a fake room, microphone and clock.

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { FloorInfo } from "../src/contract";
import { setLanguage } from "../src/i18n";
import { BUSY_MS, MicError, PushToTalk, TAIL_MS, TurnError, cutReason } from "../src/listener/ptt";

setLanguage("en");

/** A deferred answer the test settles when it wants. */
function later<T>() {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

const tick = () => new Promise((res) => setImmediate(res));

class Fake {
  connected = true;
  secure = true;
  floor: FloorInfo = { state: "free" };
  clock = 1_000_000;
  calls: string[] = []; // rpc methods and mic calls, in order
  answers = new Map<string, () => Promise<string>>();
  mic: () => Promise<void> = async () => {};
  timers: { at: number; f: () => void }[] = [];
  tickers: (() => void)[] = [];
  paints = 0;

  readonly ptt = new PushToTalk({
    connected: () => this.connected,
    secure: () => this.secure,
    rpc: (method) => {
      this.calls.push(method);
      return (this.answers.get(method) ?? (async () => "{}"))();
    },
    openMic: () => {
      this.calls.push("openMic");
      return this.mic();
    },
    closeMic: async () => {
      this.calls.push("closeMic");
    },
    floor: () => this.floor,
    me: () => "me",
    holderName: (f) => `name of ${f.holder}`,
    now: () => this.clock,
    sleep: async (ms) => {
      this.calls.push(`sleep ${ms}`);
    },
    every: (_ms, f) => {
      this.tickers.push(f);
      return () => {
        this.tickers = this.tickers.filter((g) => g !== f);
      };
    },
    after: (ms, f) => void this.timers.push({ at: this.clock + ms, f }),
    changed: () => {
      this.paints++;
    },
  });

  /** Move the clock; fire what is due. */
  advance(ms: number): void {
    this.clock += ms;
    const due = this.timers.filter((t) => t.at <= this.clock);
    this.timers = this.timers.filter((t) => t.at > this.clock);
    for (const t of due) t.f();
    for (const f of this.tickers) f();
  }

  get state() {
    return this.ptt.view().state;
  }

  get status() {
    return this.ptt.view().status?.key ?? null;
  }
}

describe("pressing", () => {
  test("not in the room: nothing is asked, the listener is told to join first", async () => {
    const f = new Fake();
    f.connected = false;
    await f.ptt.press();
    assert.deepEqual(f.calls, []);
    assert.equal(f.state, "idle");
    assert.equal(f.status, "ptt.notConnected");
  });

  test("no secure context: the microphone cannot open, said so", async () => {
    const f = new Fake();
    f.secure = false;
    await f.ptt.press();
    assert.deepEqual(f.calls, []);
    assert.equal(f.status, "ptt.insecure");
  });

  test("asks for the floor, opens the microphone, and is on air for the host's maximum", async () => {
    const f = new Fake();
    const start = later<string>();
    f.answers.set("start_turn", () => start.promise);
    const pressing = f.ptt.press();
    assert.equal(f.state, "requesting");
    assert.equal(f.ptt.active, true);
    start.resolve(JSON.stringify({ max_seconds: 20 }));
    await pressing;
    assert.deepEqual(f.calls, ["start_turn", "openMic"]);
    const v = f.ptt.view();
    assert.equal(v.state, "onair");
    assert.equal(v.pressed, true);
    assert.deepEqual(v.label, { key: "ptt.onair", vars: { s: 20 } });
    assert.equal(f.tickers.length, 1, "the countdown ticks while on air");
  });

  test("without a maximum in the reply, the default turn (30 s)", async () => {
    const f = new Fake();
    await f.ptt.press();
    assert.deepEqual(f.ptt.view().label, { key: "ptt.onair", vars: { s: 30 } });
  });

  test("a second press while a turn is under way asks nothing more", async () => {
    const f = new Fake();
    await f.ptt.press();
    await f.ptt.press();
    assert.deepEqual(f.calls, ["start_turn", "openMic"]);
  });

  test("let go while the floor was being asked for: the turn is handed over at once", async () => {
    const f = new Fake();
    const start = later<string>();
    f.answers.set("start_turn", () => start.promise);
    const pressing = f.ptt.press();
    await f.ptt.release(); // not on air yet: only remembered
    assert.deepEqual(f.calls, ["start_turn"]);
    start.resolve("{}");
    await pressing;
    assert.deepEqual(f.calls, [
      "start_turn",
      "openMic",
      `sleep ${TAIL_MS}`,
      "end_turn",
      "closeMic",
    ]);
    assert.equal(f.state, "idle");
    assert.equal(f.status, "ptt.sent");
  });

  test("refused as busy: says who is on air, shows busy, and is free to press again later", async () => {
    const f = new Fake();
    f.floor = { state: "free" }; // the refusal came before the floor's update
    f.answers.set("start_turn", async () => {
      throw new TurnError("busy", '{"code": "busy"}');
    });
    await f.ptt.press();
    assert.equal(f.state, "busy");
    assert.equal(f.status, "ptt.busy");
    assert.equal(f.ptt.active, false, "a busy button can be pressed again");
    f.advance(BUSY_MS);
    assert.equal(f.state, "idle");
    assert.equal(f.status, "ptt.busy", "the words stay");
  });

  test("refused while someone holds the floor: their name", async () => {
    const f = new Fake();
    f.floor = { state: "held", holder: "kai" };
    f.answers.set("start_turn", async () => {
      throw new TurnError("busy", "busy");
    });
    await f.ptt.press();
    assert.deepEqual(f.ptt.view().status, { key: "ptt.busyWho", vars: { name: "name of kai" } });
  });

  test("no host to answer, or another failure, in words", async () => {
    const f = new Fake();
    f.answers.set("start_turn", async () => {
      throw new TurnError("noHost", "recipient not found");
    });
    await f.ptt.press();
    assert.equal(f.status, "ptt.noHost");
    f.answers.set("start_turn", async () => {
      throw new TurnError("failed", "boom");
    });
    await f.ptt.press();
    assert.deepEqual(f.ptt.view().status, { key: "ptt.failed", vars: { msg: "boom" } });
  });

  for (const [kind, key] of [
    ["noPermission", "ptt.noPermission"],
    ["noMic", "ptt.noMic"],
  ] as const) {
    test(`the microphone does not open (${kind}): the turn is cancelled`, async () => {
      const f = new Fake();
      f.mic = async () => {
        throw new MicError(kind);
      };
      await f.ptt.press();
      assert.deepEqual(f.calls, ["start_turn", "openMic", "cancel_turn", "closeMic"]);
      assert.equal(f.state, "idle");
      assert.equal(f.status, key);
    });
  }
});

describe("releasing", () => {
  async function onAir() {
    const f = new Fake();
    await f.ptt.press();
    f.calls = [];
    return f;
  }

  test("hands the turn over after the tail, closes the microphone, thanks the caller", async () => {
    const f = await onAir();
    const end = later<string>();
    f.answers.set("end_turn", () => end.promise);
    const releasing = f.ptt.release();
    assert.equal(f.state, "ending");
    end.resolve(JSON.stringify({ status: "ok" }));
    await releasing;
    assert.deepEqual(f.calls, [`sleep ${TAIL_MS}`, "end_turn", "closeMic"]);
    assert.equal(f.state, "idle");
    assert.equal(f.status, "ptt.sent");
    assert.equal(f.tickers.length, 0, "the countdown stopped");
  });

  test("nothing heard: says so", async () => {
    const f = await onAir();
    f.answers.set("end_turn", async () => JSON.stringify({ status: "no_speech" }));
    await f.ptt.release();
    assert.equal(f.status, "ptt.noSpeech");
  });

  test("the host says the turn was not ours any more: still thanked, not an error", async () => {
    const f = await onAir();
    f.answers.set("end_turn", async () => {
      throw new TurnError("notHolding", "you do not hold the floor");
    });
    await f.ptt.release();
    assert.equal(f.status, "ptt.sent");
  });

  test("the end call fails: said, and the microphone still closes", async () => {
    const f = await onAir();
    f.answers.set("end_turn", async () => {
      throw new TurnError("noHost", "timeout");
    });
    await f.ptt.release();
    assert.equal(f.status, "ptt.noHost");
    assert.ok(f.calls.includes("closeMic"));
  });

  test("a release when not on air does nothing", async () => {
    const f = new Fake();
    await f.ptt.release();
    assert.deepEqual(f.calls, []);
  });

  test("the time runs out: the turn is handed over, saying why", async () => {
    const f = await onAir();
    f.advance(29_000);
    assert.equal(f.state, "onair");
    assert.deepEqual(f.ptt.view().label, { key: "ptt.onair", vars: { s: 1 } });
    f.advance(1_000);
    await tick();
    assert.ok(f.calls.includes("end_turn"));
    assert.equal(f.state, "idle");
    assert.equal(f.status, "ptt.timeout");
  });

  test("abandoned (the room went): cancelled without waiting for the host", async () => {
    const f = await onAir();
    await f.ptt.abandon();
    assert.deepEqual(f.calls, ["cancel_turn", "closeMic"]);
    assert.equal(f.state, "idle");
  });

  test("abandoned when idle: asks nothing", async () => {
    const f = new Fake();
    await f.ptt.abandon();
    assert.deepEqual(f.calls, []);
  });
});

describe("the floor", () => {
  test("held by someone else: the idle button shows busy with their name", () => {
    const f = new Fake();
    f.floor = { state: "held", holder: "kai", holder_name: "Kai" };
    assert.equal(f.state, "busy");
    assert.deepEqual(f.ptt.view().label, { key: "ptt.busyWho", vars: { name: "name of kai" } });
    f.floor = { state: "held", holder: "me" };
    assert.equal(f.state, "idle", "our own turn is not busy");
  });

  test("taken from us while on air: the microphone closes, saying why", async () => {
    const cases: [FloorInfo, number, string][] = [
      [{ state: "free", ended: { holder: "me", how: "quiet" } }, 0, "ptt.noSpeech"],
      [{ state: "free", ended: { holder: "me", how: "timed_out" } }, 0, "ptt.timeout"],
      [{ state: "free" }, 29_000, "ptt.timeout"], // no reason given, at the deadline
      [{ state: "free" }, 1_000, "ptt.cut"],
      [{ state: "held", holder: "kai" }, 0, "ptt.cut"],
      [{ state: "free", ended: { holder: "kai", how: "quiet" } }, 0, "ptt.cut"], // not ours
    ];
    for (const [floor, elapsed, key] of cases) {
      const f = new Fake();
      await f.ptt.press();
      f.clock += elapsed;
      f.floor = floor;
      f.ptt.floorChanged();
      assert.equal(f.state === "busy" ? "idle" : f.state, "idle", JSON.stringify(floor));
      assert.equal(f.status, key, JSON.stringify(floor));
      assert.ok(f.calls.includes("closeMic"));
    }
  });

  test("still ours: nothing changes", async () => {
    const f = new Fake();
    await f.ptt.press();
    f.floor = { state: "held", holder: "me" };
    f.ptt.floorChanged();
    assert.equal(f.state, "onair");
  });

  test("cutReason: the host's reason when the turn that ended was ours", () => {
    const now = 10_000;
    assert.deepEqual(
      cutReason({ state: "free", ended: { holder: "me", how: "left" } }, "me", now, 60_000),
      {
        key: "ptt.cut",
      },
    );
    assert.deepEqual(cutReason({ state: "free" }, "me", now, now + 1_500), { key: "ptt.timeout" });
    assert.deepEqual(cutReason({ state: "free" }, "me", now, now + 1_501), { key: "ptt.cut" });
  });
});
