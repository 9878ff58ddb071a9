import { ClosedError } from './errors.js';
import { native } from './native.js';

/** A kernel fd with an owner; every use goes through get(), which throws ClosedError once closed. */
export class FdHandle {
  private closed = false;
  constructor(
    private readonly rawFd: number,
    /** For error messages: "map 'routes'", "program 'tc_ingress'". */
    readonly what: string,
  ) {}

  get(): number {
    if (this.closed) throw new ClosedError(this.what);
    return this.rawFd;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    native.closeFd(this.rawFd);
  }
}
