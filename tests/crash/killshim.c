/* killshim: an LD_PRELOAD library that counts the mutating file-system calls a process makes
 * and kills it with SIGKILL just before call number N.
 *
 * The crash-injection harness (tests/crash/sweep.py) runs a jvs command once with
 * KILLSHIM_LOG set to learn how many such calls it makes (one line per call: number, name,
 * path), then once per call with KILLSHIM_AT=N: the process dies exactly between call N-1
 * and call N, as a power cut or an OOM kill could make it, without running that call.
 * That reaches every state the protocol can leave, not only the ones named crash hooks
 * reach.
 *
 * Counted: whatever changes the namespace, metadata or durability of a file (rename*,
 * unlink*, rmdir, mkdir*, link*, symlink*, open* with O_CREAT or O_TRUNC, truncate*,
 * chmod*, utimensat, futimens, fsync, fdatasync, syncfs, setxattr*). Not counted: plain
 * writes of data (a kill between two writes of one file is a kill before its fsync).
 * One counter per process, shared by its threads (atomic), so the order is the order the
 * kernel saw. Children started with exec do not inherit the shim: the harness kills jvs,
 * not the tools it runs (the constructor removes the variables from the environment).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

static atomic_long calls;
static long kill_at;   /* 0: never */
static int log_fd = -1;

__attribute__((constructor)) static void killshim_init(void) {
    const char *at = getenv("KILLSHIM_AT");
    const char *log = getenv("KILLSHIM_LOG");
    kill_at = at ? atol(at) : 0;
    if (log && *log) {
        int (*real_open)(const char *, int, ...) = dlsym(RTLD_NEXT, "open64");
        log_fd = real_open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    }
    /* Exec'd children (juicefs, cp) run without us; forked children keep counting. */
    unsetenv("KILLSHIM_AT");
    unsetenv("KILLSHIM_LOG");
    unsetenv("LD_PRELOAD");
}

static void note(const char *name, const char *a, const char *b) {
    long n = atomic_fetch_add(&calls, 1) + 1;
    if (log_fd >= 0) {
        char line[8192];
        int len = snprintf(line, sizeof line, "%ld %s %s%s%s\n", n, name, a ? a : "",
                           b ? " -> " : "", b ? b : "");
        if (len > (int)sizeof line - 1) {
            len = sizeof line - 1;
            line[len - 1] = '\n';
        }
        /* Before the kill, so the harness can name the call it died at. */
        ssize_t w = write(log_fd, line, len);
        (void)w;
    }
    if (kill_at && n == kill_at) {
        kill(getpid(), SIGKILL);
        pause();
    }
}

/* For a fork server that loaded the shim at start: reset the count in a freshly forked
 * child and arm it (at = 0: count only), logging to *log* if given. */
void killshim_arm(long at, const char *log) {
    atomic_store(&calls, 0);
    kill_at = at;
    if (log_fd >= 0) close(log_fd);
    log_fd = -1;
    if (log && *log) {
        int (*real_open)(const char *, int, ...) = dlsym(RTLD_NEXT, "open64");
        log_fd = real_open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    }
}

static const char *fdname(int fd, char *buf, size_t size) {
    char proc[64];
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(proc, buf, size - 1);
    buf[n < 0 ? 0 : n] = 0;
    return buf;
}

#define REAL(ret, name, ...) \
    static ret (*real)(__VA_ARGS__); \
    if (!real) real = dlsym(RTLD_NEXT, #name)

int rename(const char *a, const char *b) {
    REAL(int, rename, const char *, const char *);
    note("rename", a, b);
    return real(a, b);
}

int renameat(int fa, const char *a, int fb, const char *b) {
    REAL(int, renameat, int, const char *, int, const char *);
    note("renameat", a, b);
    return real(fa, a, fb, b);
}

int renameat2(int fa, const char *a, int fb, const char *b, unsigned int flags) {
    REAL(int, renameat2, int, const char *, int, const char *, unsigned int);
    note("renameat2", a, b);
    return real(fa, a, fb, b, flags);
}

int unlink(const char *p) {
    REAL(int, unlink, const char *);
    note("unlink", p, NULL);
    return real(p);
}

int unlinkat(int fd, const char *p, int flags) {
    REAL(int, unlinkat, int, const char *, int);
    note(flags & AT_REMOVEDIR ? "unlinkat(dir)" : "unlinkat", p, NULL);
    return real(fd, p, flags);
}

int rmdir(const char *p) {
    REAL(int, rmdir, const char *);
    note("rmdir", p, NULL);
    return real(p);
}

int mkdir(const char *p, mode_t m) {
    REAL(int, mkdir, const char *, mode_t);
    note("mkdir", p, NULL);
    return real(p, m);
}

int mkdirat(int fd, const char *p, mode_t m) {
    REAL(int, mkdirat, int, const char *, mode_t);
    note("mkdirat", p, NULL);
    return real(fd, p, m);
}

int link(const char *a, const char *b) {
    REAL(int, link, const char *, const char *);
    note("link", a, b);
    return real(a, b);
}

int linkat(int fa, const char *a, int fb, const char *b, int flags) {
    REAL(int, linkat, int, const char *, int, const char *, int);
    note("linkat", a, b);
    return real(fa, a, fb, b, flags);
}

int symlink(const char *t, const char *p) {
    REAL(int, symlink, const char *, const char *);
    note("symlink", p, t);
    return real(t, p);
}

int symlinkat(const char *t, int fd, const char *p) {
    REAL(int, symlinkat, const char *, int, const char *);
    note("symlinkat", p, t);
    return real(t, fd, p);
}

#define OPEN_BODY(name, call) \
    mode_t mode = 0; \
    if (flags & (O_CREAT | O_TMPFILE)) { \
        va_list ap; \
        va_start(ap, flags); \
        mode = va_arg(ap, mode_t); \
        va_end(ap); \
    } \
    if (flags & (O_CREAT | O_TRUNC)) note(name, p, NULL); \
    return call

int open(const char *p, int flags, ...) {
    REAL(int, open, const char *, int, ...);
    OPEN_BODY("open", real(p, flags, mode));
}

int open64(const char *p, int flags, ...) {
    REAL(int, open64, const char *, int, ...);
    OPEN_BODY("open", real(p, flags, mode));
}

int openat(int fd, const char *p, int flags, ...) {
    REAL(int, openat, int, const char *, int, ...);
    OPEN_BODY("openat", real(fd, p, flags, mode));
}

int openat64(int fd, const char *p, int flags, ...) {
    REAL(int, openat64, int, const char *, int, ...);
    OPEN_BODY("openat", real(fd, p, flags, mode));
}

int truncate(const char *p, off_t len) {
    REAL(int, truncate, const char *, off_t);
    note("truncate", p, NULL);
    return real(p, len);
}

int truncate64(const char *p, off_t len) {
    REAL(int, truncate64, const char *, off_t);
    note("truncate", p, NULL);
    return real(p, len);
}

int ftruncate(int fd, off_t len) {
    REAL(int, ftruncate, int, off_t);
    char buf[4096];
    note("ftruncate", fdname(fd, buf, sizeof buf), NULL);
    return real(fd, len);
}

int ftruncate64(int fd, off_t len) {
    REAL(int, ftruncate64, int, off_t);
    char buf[4096];
    note("ftruncate", fdname(fd, buf, sizeof buf), NULL);
    return real(fd, len);
}

int chmod(const char *p, mode_t m) {
    REAL(int, chmod, const char *, mode_t);
    note("chmod", p, NULL);
    return real(p, m);
}

int fchmod(int fd, mode_t m) {
    REAL(int, fchmod, int, mode_t);
    char buf[4096];
    note("fchmod", fdname(fd, buf, sizeof buf), NULL);
    return real(fd, m);
}

int fchmodat(int fd, const char *p, mode_t m, int flags) {
    REAL(int, fchmodat, int, const char *, mode_t, int);
    note("fchmodat", p, NULL);
    return real(fd, p, m, flags);
}

int utimensat(int fd, const char *p, const struct timespec t[2], int flags) {
    REAL(int, utimensat, int, const char *, const struct timespec *, int);
    note("utimensat", p, NULL);
    return real(fd, p, t, flags);
}

int futimens(int fd, const struct timespec t[2]) {
    REAL(int, futimens, int, const struct timespec *);
    char buf[4096];
    note("futimens", fdname(fd, buf, sizeof buf), NULL);
    return real(fd, t);
}

int fsync(int fd) {
    REAL(int, fsync, int);
    char buf[4096];
    note("fsync", fdname(fd, buf, sizeof buf), NULL);
    return real(fd);
}

int fdatasync(int fd) {
    REAL(int, fdatasync, int);
    char buf[4096];
    note("fdatasync", fdname(fd, buf, sizeof buf), NULL);
    return real(fd);
}

int syncfs(int fd) {
    REAL(int, syncfs, int);
    char buf[4096];
    note("syncfs", fdname(fd, buf, sizeof buf), NULL);
    return real(fd);
}

int setxattr(const char *p, const char *n, const void *v, size_t s, int f) {
    REAL(int, setxattr, const char *, const char *, const void *, size_t, int);
    note("setxattr", p, n);
    return real(p, n, v, s, f);
}

int lsetxattr(const char *p, const char *n, const void *v, size_t s, int f) {
    REAL(int, lsetxattr, const char *, const char *, const void *, size_t, int);
    note("lsetxattr", p, n);
    return real(p, n, v, s, f);
}

int fsetxattr(int fd, const char *n, const void *v, size_t s, int f) {
    REAL(int, fsetxattr, int, const char *, const void *, size_t, int);
    char buf[4096];
    note("fsetxattr", fdname(fd, buf, sizeof buf), n);
    return real(fd, n, v, s, f);
}
