// The pages' words (i18n), the API's refusals in words, and the small pure rules beside them.

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { ApiError, errorMessage, isPostStatus, printProblem, retryAfter } from "../src/api";
import { formatTime, language, setLanguage, setTimeZone, t, words } from "../src/i18n";
import { meterLevel } from "../src/listener/audio";
import { audience, heldBy } from "../src/listener/onair";
import {
  MyPosts,
  SHOWN_POSTS,
  describe as describeError,
  postError,
  postLength,
} from "../src/listener/posts";
import type { Post } from "../src/api";

describe("i18n", () => {
  test("the station's language, else English", () => {
    assert.equal(setLanguage("ja"), "ja");
    assert.equal(t("join.button"), "参加して聴く");
    assert.equal(setLanguage("ja-JP"), "ja");
    assert.equal(setLanguage("pt-BR"), "en");
    assert.equal(language(), "en");
    assert.equal(t("join.button"), "Join and listen");
  });

  test("values fill their places; a missing one stays visible", () => {
    setLanguage("en");
    assert.equal(t("post.counter", { n: 45, max: 500 }), "45 / 500");
    assert.equal(t("post.counter", { n: 45 }), "45 / {max}");
    assert.equal(words({ key: "listeners", vars: { n: 3 } }), "3 listening");
    setLanguage("ja");
    assert.equal(t("listeners", { n: 3 }), "3人が聴取中");
    setLanguage("en");
  });

  test("times in the station's time zone; nothing for nothing; a bad time as it came", () => {
    setLanguage("en");
    setTimeZone("Asia/Tokyo");
    const tokyo = formatTime("2026-01-01T00:00:00Z");
    setTimeZone("America/New_York");
    const newYork = formatTime("2026-01-01T00:00:00Z");
    assert.match(tokyo, /09:00/);
    assert.match(newYork, /07:00/);
    setTimeZone("Not/AZone"); // unknown to this runtime: local time, no error
    assert.equal(formatTime(null), "");
    assert.equal(formatTime("soon"), "soon");
    setTimeZone(null);
  });
});

describe("the API's answers", () => {
  test("FastAPI's detail: a sentence, or the validation errors joined", () => {
    assert.deepEqual(errorMessage({ detail: "too many posts" }), {
      message: "too many posts",
      code: null,
    });
    assert.deepEqual(
      errorMessage({
        detail: [
          { loc: ["body", "text"], msg: "Value error, text is empty", type: "value_error" },
          { loc: ["body"], msg: "another", type: "x" },
        ],
      }),
      { message: "text is empty another", code: "validation" },
    );
    assert.deepEqual(errorMessage("<html>bad gateway</html>"), { message: "", code: null });
    assert.deepEqual(errorMessage(undefined), { message: "", code: null });
  });

  test("Retry-After in whole seconds only", () => {
    assert.equal(retryAfter("30"), 30);
    assert.equal(retryAfter(" 5 "), 5);
    assert.equal(retryAfter(null), null);
    assert.equal(retryAfter("Wed, 21 Oct 2015 07:28:00 GMT"), null);
  });

  test("post statuses and prompt problems", () => {
    assert.equal(isPostStatus("aired"), true);
    assert.equal(isPostStatus("published"), false);
    assert.equal(isPostStatus("toString"), false);
    assert.equal(
      printProblem({ file: "schedule.yaml", line: 7, message: "no file", fix: "create it" }),
      "schedule.yaml:7: no file — create it",
    );
    assert.equal(printProblem({ file: "a.md", line: 1, message: "bad", fix: "" }), "a.md:1: bad");
  });
});

describe("writing in", () => {
  setLanguage("en");

  test("characters are counted as the listener sees them, trimmed", () => {
    assert.equal(postLength("  héllo 🎵  "), 7);
  });

  test("refusals in words", () => {
    const long = "x".repeat(501);
    assert.deepEqual(postError(new ApiError(422, "too long"), long), {
      message: "Your message is 501 characters; the limit is 500.",
      forgetKey: false,
    });
    assert.equal(
      postError(new ApiError(422, "text is empty"), "x").message,
      "The message can't be sent: text is empty",
    );
    assert.deepEqual(postError(new ApiError(429, "slow down", 12), "x"), {
      message: "You're writing in too fast. Please wait 12 seconds and try again.",
      forgetKey: true,
    });
    assert.match(postError(new ApiError(429, ""), "x").message, /wait a minute/);
    assert.equal(
      postError(new ApiError(409, "key reused"), "x").message,
      "Your message can't go on air: key reused",
    );
    assert.equal(postError(new ApiError(403, ""), "x").message, "Your message can't go on air.");
    assert.equal(
      postError(new ApiError(0, "unreachable"), "x").message,
      describeError(new ApiError(0, "")),
    );
    assert.match(describeError(new ApiError(0, "")), /can't be reached/);
    assert.match(describeError(new ApiError(401, "")), /session has ended/);
    assert.equal(describeError(new ApiError(503, "database away")), "database away");
    assert.match(describeError(new ApiError(500, "")), /\(500\)/);
  });

  const post = (id: string, createdAt: string, extra: Partial<Post> = {}): Post => ({
    id,
    text: `text ${id}`,
    status: "queued",
    reason: null,
    created_at: createdAt,
    aired_at: null,
    ...extra,
  });

  test("my posts: newest first, a status from the events, a text kept when an answer has none", () => {
    const mine = new MyPosts();
    mine.upsert(post("a", "2026-01-01T10:00:00Z"));
    mine.upsert(post("b", "2026-01-01T11:00:00Z", { status: "rejected", reason: "spam" }));
    assert.deepEqual(
      mine.shown().map((p) => p.id),
      ["b", "a"],
    );
    assert.equal(mine.setStatus("a", "aired"), true);
    assert.equal(mine.setStatus("zzz", "aired"), false);
    mine.upsert(post("a", "2026-01-01T10:00:00Z", { text: "", status: "aired" }));
    const a = mine.shown().find((p) => p.id === "a");
    assert.equal(a?.text, "text a");
    assert.equal(a?.status, "aired");
    assert.equal(mine.shown().find((p) => p.id === "b")?.reason, "spam");
  });

  test(`my posts: the ${SHOWN_POSTS} newest shown`, () => {
    const mine = new MyPosts();
    for (let i = 10; i < 40; i++) mine.upsert(post(`p${i}`, `2026-01-01T10:${i}:00Z`));
    assert.equal(mine.size, 30);
    const shown = mine.shown();
    assert.equal(shown.length, SHOWN_POSTS);
    assert.equal(shown[0]?.id, "p39");
  });
});

describe("on air", () => {
  test("the API's listener count when it has one, else the room's own", () => {
    assert.equal(audience(7, 3), 7);
    assert.equal(audience(0, 3), 0);
    assert.equal(audience(null, 3), 3);
    assert.equal(audience(null, null), null);
  });

  test("who holds the floor", () => {
    assert.equal(heldBy({ state: "held", holder: "kai" }), "kai");
    assert.equal(heldBy({ state: "held", holder: null }), null);
    assert.equal(heldBy({ state: "free", holder: "kai" }), null);
  });

  test("the level meter jumps up with the sound and falls back smoothly", () => {
    assert.equal(meterLevel(0, 0.1), 0.4);
    assert.equal(meterLevel(0, 1), 1);
    assert.ok(Math.abs(meterLevel(0.4, 0) - 0.34) < 1e-9);
    assert.ok(meterLevel(0.4, 0.05) < 0.4);
  });
});
