// Live captions: the host's words (and the caller's who holds the floor) as LiveKit sends them,
// one text stream per spoken segment. `CaptionLog` keeps the lines and their rules; `Captions`
// reads the streams into it and paints the list.

import { ATTR_SEGMENT_ID, ATTR_TRANSCRIPTION_FINAL, type FloorInfo } from "../contract";
import { el } from "../dom";

export const MAX_LINES = 60;

/** A caption stream as the page reads it (LiveKit's TextStreamReader is one). */
export type CaptionStream = AsyncIterable<string> & {
  info: { attributes?: Record<string, string> };
};

/** Only the host speaks in captions, and the caller who holds the floor: any listener may send
 * data (RPC needs it), so a stream from anyone else is not read at all. */
export function trusted(identity: string, host: string, floor: FloorInfo): boolean {
  return identity === host || (floor.state === "held" && floor.holder === identity);
}

/** A line's key: its sender and its segment, so a caller reusing the host's segment id gets a
 * line of their own and never rewrites the host's. A stream without a segment id is its own. */
export function lineKey(identity: string, segmentId: string | undefined, now: number): string {
  return `${identity}\u0000${segmentId ?? now}`;
}

export interface Line {
  key: string;
  speaker: "host" | "caller";
  who: string; // the name shown
  text: string;
  final: boolean;
}

/** The last MAX_LINES lines, oldest first. */
export class CaptionLog {
  private readonly lines = new Map<string, Line>();

  constructor(private readonly max = MAX_LINES) {}

  /** The line for `key`, new (at the end) if there is none; `evicted`: the keys dropped to
   * stay within the limit. */
  open(
    key: string,
    speaker: Line["speaker"],
    who: string,
  ): { line: Line; added: boolean; evicted: string[] } {
    const known = this.lines.get(key);
    if (known) return { line: known, added: false, evicted: [] };
    const line: Line = { key, speaker, who, text: "", final: false };
    this.lines.set(key, line);
    const evicted: string[] = [];
    for (const oldest of this.lines.keys()) {
      if (this.lines.size <= this.max) break;
      this.lines.delete(oldest);
      evicted.push(oldest);
    }
    return { line, added: true, evicted };
  }

  has(key: string): boolean {
    return this.lines.has(key);
  }

  all(): Line[] {
    return [...this.lines.values()];
  }
}

/** Reads one stream into its line: the stream's chunks add up to the segment's text (a stream
 * sent again for the same segment starts the line over); `final` when the stream says so. */
export async function readInto(
  stream: CaptionStream,
  line: Line,
  changed: (line: Line) => void,
): Promise<void> {
  let text = "";
  for await (const chunk of stream) {
    text += chunk;
    line.text = text;
    changed(line);
  }
  if (stream.info.attributes?.[ATTR_TRANSCRIPTION_FINAL] === "true") {
    line.final = true;
    changed(line);
  }
}

export interface CaptionDeps {
  host(): string; // the host's identity
  floor(): FloorInfo;
  nameOf(identity: string): string; // the name shown for a speaker
}

export class Captions {
  private readonly log = new CaptionLog();
  private readonly items = new Map<string, HTMLLIElement>();

  constructor(
    private readonly list: HTMLElement,
    private readonly d: CaptionDeps,
  ) {}

  async read(stream: CaptionStream, identity: string): Promise<void> {
    const host = this.d.host();
    if (!trusted(identity, host, this.d.floor())) return;
    const segment = stream.info.attributes?.[ATTR_SEGMENT_ID];
    const key = lineKey(identity, segment, Date.now());
    const speaker = identity === host ? "host" : "caller";
    const { line, added, evicted } = this.log.open(key, speaker, this.d.nameOf(identity));
    if (added) this.add(line);
    for (const gone of evicted) {
      this.items.get(gone)?.remove();
      this.items.delete(gone);
    }
    await readInto(stream, line, (l) => this.paint(l));
  }

  private add(line: Line): void {
    this.list.querySelector(".empty")?.remove();
    const li = el(
      "li",
      { attrs: { "data-speaker": line.speaker } },
      el("span", { class: "who", text: `${line.who}: ` }),
      el("span", { class: "said" }),
    );
    this.items.set(line.key, li);
    this.list.append(li);
  }

  private paint(line: Line): void {
    const li = this.items.get(line.key);
    if (!li) return; // scrolled out meanwhile
    const said = li.querySelector(".said");
    if (said) said.textContent = line.text;
    if (line.final) li.dataset.final = "true";
    this.list.scrollTop = this.list.scrollHeight;
  }
}
