//! `in-own-netns PROGRAM [ARG...]`: runs PROGRAM in a fresh network namespace with only `lo` up
//! (and `TUTTI_TEST_IN_NETNS=1` set), in place of this process. Needs root.

use std::os::unix::process::CommandExt;

fn main() {
    let mut args = std::env::args_os().skip(1);
    let Some(program) = args.next() else {
        eprintln!("usage: in-own-netns PROGRAM [ARG...]");
        std::process::exit(2);
    };
    let error = tutti_test_harness::netns::in_own_netns(&program)
        .args(args)
        .exec();
    eprintln!("in-own-netns: running unshare (util-linux; needs root): {error}");
    std::process::exit(1);
}
