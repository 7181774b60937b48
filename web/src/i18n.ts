// The pages' words in the station's language (station.yaml `language`, from GET /api/schedule).
//
// Elements carry `data-i18n="key"` (text), `data-i18n-placeholder`, `data-i18n-aria-label` or
// `data-i18n-title`; `applyStrings` fills them. Code asks `t(key, vars)` for the rest.

const en = {
  // both pages
  "conn.connecting": "Connecting…",
  "conn.connected": "On air",
  "conn.reconnecting": "Reconnecting…",
  "conn.offline": "Not connected",
  "conn.unreachable": "The station can't be reached right now. Trying again in {s} s…",
  "conn.unreachableRetrying": "The station can't be reached right now. Trying again…",
  "listeners": "{n} listening",
  "now": "Now",
  "next": "Next",
  "until": "until {t}",
  "playing": "Playing",
  "playing.by": "— {artist}",
  "error.generic": "Something went wrong ({status}). Please try again.",
  "error.unreachable": "The station can't be reached. Check your connection and try again.",
  "error.session": "Your session has ended. Please join again.",
  "error.banned": "You can no longer listen in or call this station.",
  // listener page
  "title.listener": "Listen live",
  "join.heading": "Tune in",
  "join.nickname": "Your nickname",
  "join.placeholder": "e.g. Night Owl",
  "join.button": "Join and listen",
  "join.hint": "Your nickname is shown when you call in or write in.",
  "join.empty": "Please enter a nickname.",
  "player.heading": "Listening",
  "player.level": "Sound level",
  "player.volume": "Volume",
  "player.mute": "Mute",
  "player.unmute": "Unmute",
  "player.leave": "Leave",
  "player.startAudio": "Tap to start sound",
  "ptt.heading": "Call in",
  "ptt.idle": "Hold to talk",
  "ptt.hint": "Hold the button (or the Space bar) while you talk; let go when you're done.",
  "ptt.requesting": "Requesting the floor…",
  "ptt.onair": "On air — {s} s left",
  "ptt.ending": "Sending your call…",
  "ptt.sent": "Thanks! The host is answering.",
  "ptt.noSpeech": "We didn't hear anything. Hold the button while you speak.",
  "ptt.busy": "Busy — someone is on air",
  "ptt.busyWho": "Busy — {name} is on air",
  "ptt.timeout": "Your time is up: the turn reached the maximum length.",
  "ptt.noHost": "The host isn't in the studio right now. Try again in a moment.",
  "ptt.noMic": "Your microphone is blocked or missing. Allow it in the browser to call in.",
  "ptt.insecure": "Calling in needs a secure (https) connection to this page.",
  "ptt.noPermission": "The studio didn't open your microphone channel. Please try again.",
  "ptt.failed": "The call couldn't start: {msg}",
  "ptt.notConnected": "Join the station first, then hold to talk.",
  "ptt.cut": "Your turn was ended by the studio.",
  "post.heading": "Write in",
  "post.label": "Your message to the host",
  "post.placeholder": "Say hello, request a topic, share a story…",
  "post.counter": "{n} / {max}",
  "post.send": "Send",
  "post.sending": "Sending…",
  "post.sent": "Sent! Your message is in the queue.",
  "post.empty": "Please write something first.",
  "post.tooLong": "Your message is {n} characters; the limit is {max}.",
  "post.invalid": "The message can't be sent: {msg}",
  "post.rateLimited": "You're writing in too fast. Please wait {s} seconds and try again.",
  "post.rateLimitedNoTime": "You're writing in too fast. Please wait a minute and try again.",
  "post.rejected": "Your message can't go on air: {msg}",
  "post.rejectedNoReason": "Your message can't go on air.",
  "post.mine": "Your messages",
  "status.queued": "queued",
  "status.aired": "aired",
  "status.rejected": "not aired",
  "status.hidden": "hidden by the studio",
  "captions.heading": "Live captions",
  "captions.empty": "Captions appear here when someone speaks.",
  "captions.host": "Host",
  // studio
  "title.studio": "Studio",
  "login.heading": "Producers' login",
  "login.username": "Username",
  "login.password": "Password",
  "login.button": "Log in",
  "login.failed": "Wrong username or password.",
  "login.forbidden": "The studio is for producers only. Log in with a producer account.",
  "logout": "Log out",
  "floor.free": "Floor: free",
  "floor.held": "Floor: {name} on air",
  "queue.heading": "Posts",
  "queue.empty": "No posts here.",
  "queue.approve": "Approve",
  "queue.hide": "Hide",
  "queue.reject": "Reject",
  "queue.refresh": "Refresh",
  "queue.filter": "Show",
  "queue.all": "all",
  "queue.done": "Post {action}.",
  "action.approve": "approved",
  "action.hide": "hidden",
  "action.reject": "rejected",
  "aired.heading": "As aired",
  "aired.from": "From",
  "aired.to": "To",
  "aired.search": "Search",
  "aired.empty": "Nothing aired in this time.",
  "aired.interrupted": "interrupted",
  "schedule.heading": "Schedule",
  "schedule.later": "Later today",
  "prompts.heading": "Prompts",
  "prompts.ok": "Prompts are valid and on air.",
  "prompts.bad": "The prompts have problems (the station keeps the last good version on air):",
  "prompts.unknown": "The host hasn't reported on the prompt files yet (it may be starting).",
} as const;

export type Key = keyof typeof en;

const ja: Record<Key, string> = {
  "conn.connecting": "接続中…",
  "conn.connected": "放送中",
  "conn.reconnecting": "再接続中…",
  "conn.offline": "未接続",
  "conn.unreachable": "いま放送局に接続できません。{s}秒後にもう一度試します…",
  "conn.unreachableRetrying": "いま放送局に接続できません。再接続を試みています…",
  "listeners": "{n}人が聴取中",
  "now": "いま",
  "next": "つぎ",
  "until": "{t}まで",
  "playing": "おんがく",
  "playing.by": "／{artist}",
  "error.generic": "問題が起きました（{status}）。もう一度お試しください。",
  "error.unreachable": "放送局に接続できません。通信環境を確かめて、もう一度お試しください。",
  "error.session": "セッションが切れました。もう一度参加してください。",
  "error.banned": "この放送局には参加できなくなりました。",
  "title.listener": "ライブで聴く",
  "join.heading": "聴きにいく",
  "join.nickname": "ニックネーム",
  "join.placeholder": "例：夜ふかしさん",
  "join.button": "参加して聴く",
  "join.hint": "電話やメッセージのときにニックネームが表示されます。",
  "join.empty": "ニックネームを入力してください。",
  "player.heading": "聴取中",
  "player.level": "音量レベル",
  "player.volume": "音量",
  "player.mute": "ミュート",
  "player.unmute": "ミュート解除",
  "player.leave": "退出",
  "player.startAudio": "タップして音を出す",
  "ptt.heading": "電話で参加",
  "ptt.idle": "押して話す",
  "ptt.hint": "話すあいだボタン（またはスペースキー）を押し続け、終わったら離してください。",
  "ptt.requesting": "マイクの順番を確認中…",
  "ptt.onair": "オンエア中 — 残り{s}秒",
  "ptt.ending": "送信中…",
  "ptt.sent": "ありがとうございます！パーソナリティが答えます。",
  "ptt.noSpeech": "声が聞こえませんでした。話しているあいだボタンを押し続けてください。",
  "ptt.busy": "話し中 — ほかの方がオンエア中です",
  "ptt.busyWho": "話し中 — {name}さんがオンエア中です",
  "ptt.timeout": "時間切れです：最大の長さに達しました。",
  "ptt.noHost": "いまパーソナリティがスタジオにいません。少し待ってからお試しください。",
  "ptt.noMic": "マイクが使えません。ブラウザでマイクを許可してください。",
  "ptt.insecure": "電話で参加するには、このページを安全な接続（https）で開いてください。",
  "ptt.noPermission": "スタジオがマイクを開けませんでした。もう一度お試しください。",
  "ptt.failed": "電話をつなげませんでした：{msg}",
  "ptt.notConnected": "先に放送に参加してから、ボタンを押してください。",
  "ptt.cut": "スタジオが通話を終了しました。",
  "post.heading": "メッセージを送る",
  "post.label": "パーソナリティへのメッセージ",
  "post.placeholder": "あいさつ、リクエスト、エピソードなど…",
  "post.counter": "{n} / {max}",
  "post.send": "送信",
  "post.sending": "送信中…",
  "post.sent": "送信しました！メッセージは順番待ちです。",
  "post.empty": "メッセージを書いてください。",
  "post.tooLong": "メッセージが{n}文字です。{max}文字までにしてください。",
  "post.invalid": "送信できません：{msg}",
  "post.rateLimited": "送信が続きすぎています。{s}秒待ってからもう一度お試しください。",
  "post.rateLimitedNoTime": "送信が続きすぎています。1分ほど待ってからもう一度お試しください。",
  "post.rejected": "このメッセージは放送できません：{msg}",
  "post.rejectedNoReason": "このメッセージは放送できません。",
  "post.mine": "あなたのメッセージ",
  "status.queued": "順番待ち",
  "status.aired": "放送済み",
  "status.rejected": "放送不可",
  "status.hidden": "スタジオが非表示",
  "captions.heading": "ライブ字幕",
  "captions.empty": "誰かが話すと、ここに字幕が出ます。",
  "captions.host": "パーソナリティ",
  "title.studio": "スタジオ",
  "login.heading": "プロデューサー ログイン",
  "login.username": "ユーザー名",
  "login.password": "パスワード",
  "login.button": "ログイン",
  "login.failed": "ユーザー名またはパスワードが違います。",
  "login.forbidden": "スタジオはプロデューサー専用です。プロデューサーのアカウントでログインしてください。",
  "logout": "ログアウト",
  "floor.free": "マイク：空き",
  "floor.held": "マイク：{name}さんがオンエア中",
  "queue.heading": "投稿",
  "queue.empty": "投稿はありません。",
  "queue.approve": "承認",
  "queue.hide": "非表示",
  "queue.reject": "却下",
  "queue.refresh": "更新",
  "queue.filter": "表示",
  "queue.all": "すべて",
  "queue.done": "投稿を{action}しました。",
  "action.approve": "承認",
  "action.hide": "非表示に",
  "action.reject": "却下",
  "aired.heading": "放送記録",
  "aired.from": "開始",
  "aired.to": "終了",
  "aired.search": "検索",
  "aired.empty": "この時間に放送された記録はありません。",
  "aired.interrupted": "中断",
  "schedule.heading": "番組表",
  "schedule.later": "このあと",
  "prompts.heading": "プロンプト",
  "prompts.ok": "プロンプトは正常で、放送に使われています。",
  "prompts.bad": "プロンプトに問題があります（放送は最後の正常な版で続いています）：",
  "prompts.unknown": "パーソナリティがまだプロンプトの状態を報告していません（起動中かもしれません）。",
};

const tables: Record<string, Record<Key, string>> = { en, ja };
let table: Record<Key, string> = en;
let current = "en";

/** Pick the language: the station's, else the browser's, else English. */
export function setLanguage(lang: string | null | undefined): string {
  const wanted = (lang || globalThis.navigator?.language || "en").slice(0, 2).toLowerCase();
  current = wanted in tables ? wanted : "en";
  table = tables[current] ?? en;
  if (typeof document !== "undefined") document.documentElement.lang = current;
  return current;
}

export function language(): string {
  return current;
}

export function t(key: Key, vars: Record<string, string | number> = {}): string {
  return table[key].replace(/\{(\w+)\}/g, (_, name: string) => String(vars[name] ?? `{${name}}`));
}

/** Words to show, kept as a key (and its values) until they are shown in the current language. */
export interface Say {
  key: Key;
  vars?: Record<string, string | number>;
}

export function words(say: Say): string {
  return t(say.key, say.vars);
}

export function applyStrings(root: ParentNode = document): void {
  for (const el of root.querySelectorAll<HTMLElement>("[data-i18n]")) {
    el.textContent = t(el.dataset.i18n as Key);
  }
  const attrs: [string, string][] = [
    ["i18nPlaceholder", "placeholder"],
    ["i18nAriaLabel", "aria-label"],
    ["i18nTitle", "title"],
  ];
  for (const [data, attr] of attrs) {
    const sel = `[data-${data.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}]`;
    for (const el of root.querySelectorAll<HTMLElement>(sel)) {
      el.setAttribute(attr, t(el.dataset[data] as Key));
    }
  }
}

// Times are shown in the station's time zone (the schedule is written in it), once known.
let timeZone: string | undefined;

export function setTimeZone(tz: string | null | undefined): void {
  try {
    if (tz) new Intl.DateTimeFormat("en", { timeZone: tz });
    timeZone = tz || undefined;
  } catch {
    timeZone = undefined; // unknown to this browser: local time
  }
}

export function formatTime(iso: string | null, withDate = false): string {
  if (!iso) return "";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  const opts: Intl.DateTimeFormatOptions = withDate
    ? { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", second: "2-digit" }
    : { hour: "2-digit", minute: "2-digit" };
  return new Intl.DateTimeFormat(current, { ...opts, timeZone }).format(d);
}
