/**
 * 128 + SIGINT: what a shell reports for a program stopped by Ctrl-C, and what any pgkeep process exits
 * with when a signal cancels its work. Kept below both adapters: the server (http/) cannot import the CLI's
 * table (cli/ imports http/ for `serve`, so that would make the two depend on each other).
 */
export const EXIT_CANCELLED = 130
