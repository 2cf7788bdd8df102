//! A process's command line, as /proc/PID/cmdline shows it: rewritten in
//! place by a monitor the launcher forked (monitor/launcher.rs).

use std::io;

/// This process's argument area, which /proc/PID/cmdline shows: the
/// arguments it was exec'd with, laid end to end on its first stack.
pub struct ArgArea {
    start: usize,
    end: usize,
}

impl ArgArea {
    /// This process's, from /proc/self/stat (arg_start and arg_end).
    pub fn own() -> io::Result<ArgArea> {
        let stat = std::fs::read_to_string("/proc/self/stat")?;
        let bad = || io::Error::other("unreadable /proc/self/stat");
        // Fields after the command name (which may hold spaces); the
        // first of them is field 3, arg_start is field 48.
        let fields: Vec<&str> = stat
            .rsplit_once(") ")
            .ok_or_else(bad)?
            .1
            .split_whitespace()
            .collect();
        let field = |n: usize| -> io::Result<usize> {
            fields
                .get(n - 3)
                .and_then(|f| f.parse().ok())
                .ok_or_else(bad)
        };
        let (start, end) = (field(48)?, field(49)?);
        match start < end {
            true => Ok(ArgArea { start, end }),
            false => Err(bad()),
        }
    }

    /// Whether `args` fit in the area, NUL-terminated.
    pub fn fits(&self, args: &[&[u8]]) -> io::Result<()> {
        let needed: usize = args.iter().map(|a| a.len() + 1).sum();
        match needed <= self.end - self.start {
            true => Ok(()),
            false => Err(io::Error::other("the command line does not fit")),
        }
    }

    /// Writes `args` over the area, NUL-terminated, and zeroes the rest:
    /// the process's command line from then on. Fails, changing nothing,
    /// if they do not fit. Only for a process that no longer reads its
    /// own arguments (std::env::args would see the new ones).
    pub fn rewrite(&self, args: &[&[u8]]) -> io::Result<()> {
        self.fits(args)?;
        let len = self.end - self.start;
        let mut line: Vec<u8> = Vec::with_capacity(len);
        for a in args {
            line.extend_from_slice(a);
            line.push(0);
        }
        line.resize(len, 0);
        // SAFETY: [start, end) is this process's argument area, mapped
        // and writable for its whole life (the kernel put argv there);
        // exactly `len` bytes are written, and no Rust reference points
        // into it (std keeps raw pointers and copies on each read).
        unsafe {
            std::ptr::copy_nonoverlapping(line.as_ptr(), self.start as *mut u8, len);
        }
        Ok(())
    }
}
