// The listener's connection machine: every transition the page relies on.

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  type ConnEvent,
  type ConnState,
  type Effect,
  INITIAL,
  backoffSeconds,
  shown,
  transition,
} from "../src/listener/connection";

/** The state and every effect after `events`, from `from`. */
function after(events: ConnEvent[], from: ConnState = INITIAL, random = 0.5) {
  let state = from;
  const effects: Effect[] = [];
  for (const e of events) {
    const step = transition(state, e, random);
    state = step.state;
    effects.push(...step.effects);
  }
  return { state, effects };
}

const types = (effects: Effect[]) => effects.map((e) => e.type);
const joined: ConnEvent[] = [{ type: "join" }, { type: "joined", run: 1 }];
const failed = (run: number): ConnEvent => ({ type: "failed", run, why: "other" });

describe("joining", () => {
  test("a join asks for a room (run 1) and says connecting", () => {
    const { state, effects } = after([{ type: "join" }]);
    assert.equal(state.phase, "joining");
    assert.equal(shown(state), "connecting");
    assert.deepEqual(effects, [{ type: "cancelRetry" }, { type: "connect", run: 1 }]);
  });

  test("the room joined: on air, the notice gone, the host read", () => {
    const { state, effects } = after(joined);
    assert.equal(state.phase, "on");
    assert.equal(shown(state), "connected");
    assert.deepEqual(types(effects).slice(-2), ["reachable", "tunedIn"]);
  });

  test("a join while joined does nothing", () => {
    const on = after(joined).state;
    assert.deepEqual(transition(on, { type: "join" }), { state: on, effects: [] });
  });

  test("an answer for an older run is stale", () => {
    // The first join fails, the retry (run 2) is under way when run 1's answer comes.
    const { state } = after([{ type: "join" }, failed(1), { type: "retry" }]);
    assert.equal(state.run, 2);
    assert.deepEqual(transition(state, { type: "joined", run: 1 }).state, state);
    assert.deepEqual(transition(state, failed(1)).state, state);
    assert.equal(transition(state, { type: "joined", run: 2 }).state.phase, "on");
  });

  test("a room joined after the listener left is closed again", () => {
    const { state } = after([{ type: "join" }, { type: "leave" }]);
    const step = transition(state, { type: "joined", run: 1 });
    assert.equal(step.state.phase, "out");
    assert.deepEqual(step.effects, [{ type: "close", polite: false }]);
  });
});

describe("backing off", () => {
  test("the delay doubles from 1 s up to 30 s, jittered by a quarter either way", () => {
    assert.equal(backoffSeconds(0, 0.5), 1);
    assert.equal(backoffSeconds(3, 0.5), 8);
    assert.equal(backoffSeconds(10, 0.5), 30);
    assert.equal(backoffSeconds(2, 0), 3);
    assert.equal(backoffSeconds(2, 1), 5);
  });

  test("the first failure waits quietly; from the second the outage is said, with its countdown", () => {
    const first = after([{ type: "join" }, failed(1)]);
    assert.equal(first.state.phase, "waiting");
    assert.equal(shown(first.state), "reconnecting");
    assert.deepEqual(first.effects.at(-1), { type: "retryIn", seconds: 1 });
    assert.ok(!types(first.effects).includes("unreachable"));

    const second = after([{ type: "retry" }, failed(2)], first.state);
    assert.equal(second.state.attempt, 2);
    assert.deepEqual(
      second.effects.filter((e) => e.type === "unreachable" || e.type === "retryIn"),
      [
        { type: "unreachable", seconds: 2 },
        { type: "retryIn", seconds: 2 },
      ],
    );
  });

  test("a retry joins again and says reconnecting; success resets the back-off", () => {
    const retrying = after([{ type: "join" }, failed(1), { type: "retry" }]);
    assert.equal(retrying.state.phase, "joining");
    assert.equal(shown(retrying.state), "reconnecting");
    assert.deepEqual(retrying.effects.at(-1), { type: "connect", run: 2 });
    const on = after([{ type: "joined", run: 2 }], retrying.state).state;
    assert.equal(on.attempt, 0);
    assert.equal(shown(on), "connected");
  });

  test("a retry timer that fires outside waiting is ignored", () => {
    const on = after(joined).state;
    assert.deepEqual(transition(on, { type: "retry" }).effects, []);
  });

  test("the browser back online joins at once, only when the page is waiting or halted", () => {
    const waiting = after([{ type: "join" }, failed(1)]).state;
    assert.deepEqual(transition(waiting, { type: "online" }).effects, [
      { type: "cancelRetry" },
      { type: "connect", run: 2 },
    ]);
    for (const state of [after(joined).state, after([{ type: "join" }]).state, INITIAL]) {
      assert.deepEqual(transition(state, { type: "online" }).effects, [], state.phase);
    }
  });
});

describe("the API refuses the room token", () => {
  for (const why of ["session", "banned"] as const) {
    test(`${why}: out, saying why, and no retry`, () => {
      const { state, effects } = after([{ type: "join" }, { type: "failed", run: 1, why }]);
      assert.equal(state.phase, "out");
      assert.equal(shown(state), "offline");
      assert.deepEqual(effects.at(-1), { type: "ended", why });
      assert.ok(!types(effects).includes("retryIn"));
      // Nothing brings it back but a new join.
      assert.deepEqual(transition(state, { type: "retry" }).effects, []);
      assert.deepEqual(transition(state, { type: "online" }).effects, []);
    });
  }
});

describe("LiveKit's own reconnect", () => {
  const recovering = after([...joined, { type: "recovering" }]);

  test("says reconnecting and watches for a slow one", () => {
    assert.equal(recovering.state.phase, "recovering");
    assert.equal(shown(recovering.state), "reconnecting");
    assert.deepEqual(recovering.effects.at(-1), { type: "watchSlow" });
  });

  test("a slow reconnect is said in words, once", () => {
    const slow = transition(recovering.state, { type: "slow" });
    assert.deepEqual(slow.effects, [{ type: "unreachable", seconds: null }]);
    assert.deepEqual(transition(slow.state, { type: "slow" }).effects, []);
  });

  test("back: on air, the notice gone, and a late slow timer says nothing", () => {
    const back = transition(recovering.state, { type: "recovered" });
    assert.equal(back.state.phase, "on");
    assert.deepEqual(back.effects, [{ type: "reachable" }]);
    assert.deepEqual(transition(back.state, { type: "slow" }).effects, []);
  });

  test("still slow after the room is lost: the back-off is said instead", () => {
    const lost = after([{ type: "dropped", byUs: false }, { type: "slow" }], recovering.state);
    assert.equal(lost.state.phase, "waiting");
    assert.deepEqual(lost.effects.at(-1), { type: "unreachable", seconds: null });
  });
});

describe("the room goes", () => {
  test("lost: the turn and the sound stop, then back off", () => {
    const { state, effects } = after([...joined, { type: "dropped", byUs: false }]);
    assert.equal(state.phase, "waiting");
    assert.equal(state.attempt, 1);
    assert.deepEqual(types(effects).slice(-2), ["silence", "retryIn"]);
  });

  test("closed by the browser: offline until it is back online", () => {
    const { state, effects } = after([...joined, { type: "dropped", byUs: true }]);
    assert.equal(state.phase, "halted");
    assert.equal(shown(state), "offline");
    assert.deepEqual(effects.at(-1), { type: "silence" });
    assert.equal(transition(state, { type: "online" }).state.phase, "joining");
  });

  test("a drop while joining is left to the join's own answer", () => {
    const joining = after([{ type: "join" }]).state;
    assert.deepEqual(transition(joining, { type: "dropped", byUs: false }).state, joining);
  });
});

describe("leaving", () => {
  test("the listener leaves: the turn is dropped politely before the room, then the form", () => {
    const { state, effects } = after([...joined, { type: "leave" }]);
    assert.equal(state.phase, "out");
    assert.deepEqual(effects.slice(-4), [
      { type: "cancelRetry" },
      { type: "reachable" },
      { type: "close", polite: true },
      { type: "ended", why: "left" },
    ]);
  });

  test("the session ends while waiting: out, saying so", () => {
    const waiting = after([{ type: "join" }, failed(1)]).state;
    const step = transition(waiting, { type: "leave", why: "session" });
    assert.equal(step.state.phase, "out");
    assert.deepEqual(step.effects.at(-1), { type: "ended", why: "session" });
  });

  test("the page is left: the room closes at once; back from the page cache it joins again", () => {
    const hidden = after([...joined, { type: "hide" }]);
    assert.equal(hidden.state.phase, "hidden");
    assert.equal(shown(hidden.state), "offline");
    assert.deepEqual(hidden.effects.slice(-2), [
      { type: "cancelRetry" },
      { type: "close", polite: false },
    ]);
    // The room's own goodbye and the browser's online event change nothing while hidden.
    assert.deepEqual(transition(hidden.state, { type: "dropped", byUs: true }).state, hidden.state);
    assert.deepEqual(transition(hidden.state, { type: "online" }).effects, []);
    const shownAgain = transition(hidden.state, { type: "show" });
    assert.equal(shownAgain.state.phase, "joining");
    assert.deepEqual(shownAgain.effects.at(-1), { type: "connect", run: 2 });
  });

  test("a page left before joining stays out", () => {
    assert.deepEqual(transition(INITIAL, { type: "hide" }), { state: INITIAL, effects: [] });
    assert.deepEqual(transition(INITIAL, { type: "show" }), { state: INITIAL, effects: [] });
  });
});
