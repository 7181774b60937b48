// The listener's connection to the station's room, as one state machine. `transition` is pure:
// given where the page is (ConnState) and what happened (ConnEvent), it says where the page is
// now and what to do about it (Effect). The LiveKit wiring (link.ts) turns the room's doings
// into events; the page (listener.ts) runs the effects and keeps the timers.
//
//   out ─join→ joining ─joined→ on ─recovering→ recovering ─recovered→ on
//   joining ─failed→ waiting (or out, when the API refuses: session over, or banned)
//   on, recovering ─dropped→ waiting (halted, when the browser itself closed the room)
//   waiting ─retry, online→ joining;  halted ─online, show→ joining
//   any joined phase ─hide (the page is left)→ hidden ─show (back from the page cache)→ joining
//   any ─leave→ out

export type Phase =
  | "out" // not joined: the join form is shown
  | "joining" // asking the API for a room token and joining the room
  | "on" // in the room
  | "recovering" // LiveKit's own reconnect, the room kept
  | "waiting" // the room is gone: joining again when the back-off timer fires
  | "halted" // the room was closed from this side (the browser), the listener still joined
  | "hidden"; // the page was left (pagehide): the room closed until it is shown again

export interface ConnState {
  phase: Phase;
  attempt: number; // failed joins in a row: the back-off's exponent (reset by a join that works)
  run: number; // which join the answers belong to: an older run's answer is stale
  slow: boolean; // LiveKit is reconnecting and the page has not said so in words yet
}

export const INITIAL: ConnState = { phase: "out", attempt: 0, run: 0, slow: false };

/** Why the listener is out: they left, or the API refused them (the page says which). */
export type Ended = "left" | "session" | "banned";

export type ConnEvent =
  | { type: "join" } // the listener joined with a session
  | { type: "joined"; run: number } // the room is joined
  | { type: "failed"; run: number; why: "session" | "banned" | "other" } // no room token/room
  | { type: "recovering" } // LiveKit lost the signal or media connection and is reconnecting
  | { type: "recovered" } // ... and it is back
  | { type: "dropped"; byUs: boolean } // the room disconnected (byUs: the browser closed it)
  | { type: "retry" } // the back-off timer fired
  | { type: "slow" } // a while (SLOW_SECONDS) after LiveKit started reconnecting
  | { type: "online" } // the browser is online again
  | { type: "leave"; why?: Ended } // the listener left, or the API ended the session
  | { type: "hide" } // the page is going away (pagehide)
  | { type: "show" }; // the page came back from the browser's page cache

export type Effect =
  | { type: "connect"; run: number } // ask for a room token and join the room
  // Drop the turn (asking the host first when polite), the sound and the room.
  | { type: "close"; polite: boolean }
  | { type: "silence" } // the room went: drop the turn and the sound
  | { type: "tunedIn" } // joined: read the host, count the audience, start the sound
  | { type: "retryIn"; seconds: number }
  | { type: "cancelRetry" }
  | { type: "watchSlow" } // send `slow` after SLOW_SECONDS
  | { type: "unreachable"; seconds: number | null } // say the station is unreachable (countdown)
  | { type: "reachable" } // ... no more
  | { type: "ended"; why: Ended }; // the join form again (saying why, unless the listener left)

/** What the connection badge says. */
export type Shown = "offline" | "connecting" | "connected" | "reconnecting";

export const SLOW_SECONDS = 5;
/** Failed joins in a row before the back-off is said in words (with its countdown). */
export const SAY_AFTER_ATTEMPTS = 2;

export function shown(s: ConnState): Shown {
  switch (s.phase) {
    case "on":
      return "connected";
    case "joining":
      return s.attempt > 0 ? "reconnecting" : "connecting";
    case "recovering":
    case "waiting":
      return "reconnecting";
    default:
      return "offline";
  }
}

/** Seconds before the next join: doubling from 1 up to 30, ±25 % jitter (`random` in [0, 1)). */
export function backoffSeconds(attempt: number, random: number): number {
  return Math.min(30, 2 ** attempt) * (0.75 + random / 2);
}

export interface Step {
  state: ConnState;
  effects: Effect[];
}

const stay = (state: ConnState): Step => ({ state, effects: [] });

function connect(s: ConnState): Step {
  const run = s.run + 1;
  return {
    state: { ...s, phase: "joining", run },
    effects: [{ type: "cancelRetry" }, { type: "connect", run }],
  };
}

function backOff(s: ConnState, effects: Effect[], random: number): Step {
  const seconds = backoffSeconds(s.attempt, random);
  const attempt = s.attempt + 1;
  const say = attempt >= SAY_AFTER_ATTEMPTS;
  return {
    state: { ...s, phase: "waiting", attempt, slow: say ? false : s.slow },
    effects: [
      ...effects,
      ...(say ? [{ type: "unreachable", seconds } as const] : []),
      { type: "retryIn", seconds },
    ],
  };
}

function out(s: ConnState, why: Ended): Step {
  return {
    state: { ...s, phase: "out", slow: false },
    effects: [
      { type: "cancelRetry" },
      { type: "reachable" },
      { type: "close", polite: true },
      { type: "ended", why },
    ],
  };
}

/** The next state and what to do, for `event` in state `s`. `random` ∈ [0, 1) jitters the
 * back-off (the caller passes Math.random(); tests pass a number). */
export function transition(s: ConnState, event: ConnEvent, random = 0.5): Step {
  const { phase } = s;
  switch (event.type) {
    case "join":
      return phase === "out" ? connect(s) : stay(s);

    case "joined":
      if (phase === "joining" && event.run === s.run) {
        return {
          state: { ...s, phase: "on", attempt: 0, slow: false },
          effects: [{ type: "reachable" }, { type: "tunedIn" }],
        };
      }
      // A room joined after the page stopped wanting it (left, or hidden meanwhile).
      return phase === "on" || phase === "recovering"
        ? stay(s)
        : { state: s, effects: [{ type: "close", polite: false }] };

    case "failed":
      if (phase !== "joining" || event.run !== s.run) return stay(s);
      // 401: the session is over; 403: banned, and asking again would only be refused again.
      if (event.why !== "other") return out(s, event.why);
      return backOff(s, [], random);

    case "recovering":
      return phase === "on" || phase === "recovering"
        ? { state: { ...s, phase: "recovering", slow: true }, effects: [{ type: "watchSlow" }] }
        : stay(s);

    case "recovered":
      return phase === "on" || phase === "recovering"
        ? { state: { ...s, phase: "on", slow: false }, effects: [{ type: "reachable" }] }
        : stay(s);

    case "dropped":
      if (phase !== "on" && phase !== "recovering") return stay(s);
      if (event.byUs) {
        return { state: { ...s, phase: "halted", slow: false }, effects: [{ type: "silence" }] };
      }
      return backOff(s, [{ type: "silence" }], random);

    case "retry":
      return phase === "waiting" ? connect(s) : stay(s);

    case "online":
      return phase === "waiting" || phase === "halted" ? connect(s) : stay(s);

    case "show":
      return phase === "hidden" || phase === "halted" || phase === "waiting" ? connect(s) : stay(s);

    case "slow":
      return s.slow && shown(s) === "reconnecting"
        ? { state: { ...s, slow: false }, effects: [{ type: "unreachable", seconds: null }] }
        : stay(s);

    case "leave":
      return out(s, event.why ?? "left");

    case "hide":
      // The room closes at once, so the host sees the listener go (and frees a held floor).
      return phase === "out"
        ? stay(s)
        : {
            state: { ...s, phase: "hidden", slow: false },
            effects: [{ type: "cancelRetry" }, { type: "close", polite: false }],
          };
  }
}
