// Typing signals of the web chat: "started" when the customer types (repeated at most every
// TYPING_REPEAT_MS while they go on), "stopped" after TYPING_IDLE_MS without a keystroke or
// when the box is emptied. The signal itself is sent by the caller's `signal(active)`.

const TYPING_REPEAT_MS = 2000;
const TYPING_IDLE_MS = 1500;

export class TypingSignals {
  constructor(signal) {
    this.signal = signal;
    this.active = false;
    this.sentAt = 0;
    this.idleTimer = null;
  }

  /** A keystroke; `hasText` says whether the box still holds something. */
  keystroke(hasText) {
    if (!hasText) {
      if (this.stop()) this.signal(false);
      return;
    }
    const now = Date.now();
    if (!this.active || now - this.sentAt >= TYPING_REPEAT_MS) {
      this.active = true;
      this.sentAt = now;
      this.signal(true);
    }
    clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => {
      if (this.stop()) this.signal(false);
    }, TYPING_IDLE_MS);
  }

  /** Forget that the customer is typing; true if they were (a stop signal is due). */
  stop() {
    clearTimeout(this.idleTimer);
    this.idleTimer = null;
    const was = this.active;
    this.active = false;
    return was;
  }
}
