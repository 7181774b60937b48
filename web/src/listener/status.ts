// The connection as the listener sees it: the badge in the bar and, during an outage, the
// notice in words (with a countdown to the next try when there is one).

import { show } from "../dom";
import { type Key, t } from "../i18n";
import type { Shown } from "./connection";

export class ConnBadge {
  private now: Shown = "offline";

  constructor(private readonly badge: HTMLElement) {}

  set(state: Shown): void {
    this.now = state;
    this.badge.dataset.state = state;
    this.badge.textContent = t(`conn.${state}` as Key);
    document.body.dataset.conn = state;
  }

  /** Again in the current language. */
  render(): void {
    this.set(this.now);
  }
}

export class Unreachable {
  private ticker: number | undefined;

  constructor(private readonly notice: HTMLElement) {}

  /** The outage in words; with `seconds`, a countdown to the next try. */
  say(seconds: number | null): void {
    window.clearInterval(this.ticker);
    if (seconds === null) {
      this.notice.textContent = t("conn.unreachableRetrying");
      show(this.notice, true);
      return;
    }
    let left = Math.max(1, Math.round(seconds));
    const paint = () => {
      this.notice.textContent = t("conn.unreachable", { s: left });
    };
    paint();
    show(this.notice, true);
    this.ticker = window.setInterval(() => {
      left = Math.max(0, left - 1);
      paint();
      if (left === 0) window.clearInterval(this.ticker);
    }, 1000);
  }

  hide(): void {
    window.clearInterval(this.ticker);
    show(this.notice, false);
  }
}
