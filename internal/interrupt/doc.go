// Package interrupt gives the command-line tools that build network
// namespaces (demo, vxbench) one way to stop on a signal: the first SIGINT,
// SIGTERM or SIGHUP cancels a context so the tool can run its cleanup;
// further signals are absorbed (with a note) until the tool exits, so a
// second Ctrl-C cannot leave namespaces behind.
//
// Context is called once per process, from main; the returned stop function
// releases the signal handler and is safe to call more than once.
package interrupt
