// Drafts: the reply a running turn is still writing (`reply.draft` events, no id), kept per
// turn with the same rules as the server's forwarder, so a late draft never shows after the
// truth even if it slipped through:
//
// - a turn's drafts stop counting once its end is known (`close`: committed, failed,
//   superseded);
// - an attempt's drafts are dropped once withdrawn (`withdraw`), and drafts of a lower
//   attempt or fence than the highest seen for the turn (`started`, or a newer draft);
// - a draft applies as `text so far [:offset] + text` (offsets in code points); one whose
//   offset lies beyond the text so far cannot be placed (a draft was lost) and waits for
//   the next whole one (offset 0, at least once a second).

const MAX_TURNS = 256;

export class DraftTexts {
  constructor() {
    this.turns = new Map(); // turn id -> state, oldest first
  }

  state(turnId) {
    let s = this.turns.get(turnId);
    if (!s) {
      s = { closed: false, withdrawn: 0, attempt: 0, fence: 0, shown: null, chars: [] };
      this.turns.set(turnId, s);
      if (this.turns.size > MAX_TURNS) this.turns.delete(this.turns.keys().next().value);
    }
    return s;
  }

  /** Apply a draft's data; the turn's text so far, or null when the draft is ignored. */
  apply(turnId, { attempt = 0, fence = 0, offset = 0, text = "" }) {
    const s = this.state(turnId);
    if (s.closed || attempt <= s.withdrawn || attempt < s.attempt || fence < s.fence) return null;
    s.attempt = attempt;
    s.fence = fence;
    const shown = `${attempt}/${fence}`;
    if (s.shown !== shown) {
      s.shown = shown;
      s.chars = [];
    }
    if (offset > s.chars.length) return null;
    s.chars = s.chars.slice(0, offset).concat(Array.from(text));
    return s.chars.join("");
  }

  /** Attempts up to `attempt` are withdrawn; true when the text shown was one of them. */
  withdraw(turnId, attempt = 0) {
    const s = this.state(turnId);
    s.withdrawn = Math.max(s.withdrawn, attempt);
    return this.retire(s, attempt + 1);
  }

  /** Attempt `attempt` started; true when the text shown is of an earlier one. */
  started(turnId, attempt = 0) {
    const s = this.state(turnId);
    s.attempt = Math.max(s.attempt, attempt);
    return this.retire(s, attempt);
  }

  /** The turn ended (committed, failed, superseded): no draft of it counts any more. */
  close(turnId) {
    this.state(turnId).closed = true;
  }

  retire(s, below) {
    if (s.shown === null || Number(s.shown.split("/")[0]) >= below) return false;
    s.shown = null;
    s.chars = [];
    return true;
  }
}
