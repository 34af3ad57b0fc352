/*
 * test_fsio.c - the durable-I/O helpers and the fault injector that the
 * storage tests rely on.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"
#include "core/fsio.h"

#include "tmpdir.h"

static char *root;

static int setup(void **state)
{
    root = tmpdir_make(NULL, "fsio");
    if (!root)
        return -1;
    fsio_fault_reset();
    return 0;
}

static int teardown(void **state)
{
    fsio_fault_off();
    fsio_sys_set(NULL);
    return tmpdir_remove(root);
}

static size_t slurp(const char *path, char *out, size_t cap)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return (size_t)-1;
    size_t n = fread(out, 1, cap - 1, f);
    out[n] = '\0';
    fclose(f);
    return n;
}

static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *de;
    while (d && (de = readdir(d)))
        if (de->d_name[0] != '.')
            n++;
    if (d)
        closedir(d);
    return n;
}

static void test_write_all_short_and_eintr(void **state)
{
    int fd = fsio_open(tmpdir_at("%s", "f"), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    /* every write is cut to 3 bytes */
    fsio_fault_set(FSIO_OP_WRITE, 0, 0, 3);
    size_t done = 0;
    assert_int_equal(fsio_write_all(fd, "hello world", 11, &done), 0);
    assert_int_equal(done, 11);
    assert_int_equal(fsio_fault_calls(FSIO_OP_WRITE), 4);
    fsio_fault_clear(FSIO_OP_WRITE);
    /* two EINTRs, then it goes through */
    struct fsio_fault f = {.after = 0, .times = 2, .err = EINTR};
    fsio_fault_arm(FSIO_OP_WRITE, &f);
    assert_int_equal(fsio_write_all(fd, "!", 1, &done), 0);
    assert_int_equal(fsio_fault_hits(FSIO_OP_WRITE), 4 + 2);
    fsio_close(fd);
    char b[64];
    slurp(tmpdir_at("%s", "f"), b, sizeof(b));
    assert_string_equal(b, "hello world!");
}

static void test_write_all_disk_full(void **state)
{
    int fd = fsio_open(tmpdir_at("%s", "f"), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    /* a disk filling up: 4 bytes fit, then ENOSPC */
    fsio_fault_set(FSIO_OP_WRITE, 0, ENOSPC, 4);
    size_t done = 99;
    assert_int_equal(fsio_write_all(fd, "0123456789", 10, &done), WEIR_ENOSPC);
    assert_int_equal(done, 4);
    fsio_fault_clear(FSIO_OP_WRITE);
    fsio_fault_set(FSIO_OP_PWRITE, 1, EIO, 0);
    assert_int_equal(fsio_pwrite_all(fd, "ab", 2, 0, &done), 0);
    assert_int_equal(fsio_pwrite_all(fd, "cd", 2, 2, &done), WEIR_EIO);
    assert_int_equal(done, 0);
    fsio_close(fd);
    char b[64];
    assert_int_equal(slurp(tmpdir_at("%s", "f"), b, sizeof(b)), 4);
    assert_string_equal(b, "ab23");
}

static void test_fsync_faults(void **state)
{
    int fd = fsio_open(tmpdir_at("%s", "f"), O_WRONLY | O_CREAT, 0644);
    struct fsio_fault once = {.after = 0, .times = 1, .err = EINTR};
    fsio_fault_arm(FSIO_OP_FSYNC, &once);
    assert_int_equal(fsio_fsync(fd), 0); /* EINTR retried */
    fsio_fault_set(FSIO_OP_FDATASYNC, 1, EIO, 0);
    assert_int_equal(fsio_fdatasync(fd), 0);
    assert_int_equal(fsio_fdatasync(fd), WEIR_EIO);
    assert_int_equal(errno, EIO);
    fsio_fault_set(FSIO_OP_FDATASYNC, 0, ENOSPC, 0);
    assert_int_equal(fsio_fdatasync(fd), WEIR_ENOSPC);
    fsio_close(fd);
}

static void test_mkdir_p(void **state)
{
    unsigned long f0 = fsio_fault_calls(FSIO_OP_FSYNC);
    assert_int_equal(fsio_mkdir_p(tmpdir_at("%s", "a/b/c/"), 0755), 0);
    struct stat st;
    assert_int_equal(stat(tmpdir_at("%s", "a/b/c"), &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    /* one parent fsync per level created */
    assert_int_equal(fsio_fault_calls(FSIO_OP_FSYNC) - f0, 3);
    f0 = fsio_fault_calls(FSIO_OP_FSYNC);
    assert_int_equal(fsio_mkdir_p(tmpdir_at("%s", "a/b/c"), 0755), 0);
    assert_int_equal(fsio_fault_calls(FSIO_OP_FSYNC) - f0, 0);
    /* a file in the way */
    close(open(tmpdir_at("%s", "a/file"), O_CREAT | O_WRONLY, 0644));
    assert_int_equal(fsio_mkdir_p(tmpdir_at("%s", "a/file/x"), 0755), WEIR_EIO);
    assert_int_equal(fsio_mkdir_p(tmpdir_at("%s", "a/file"), 0755), WEIR_EEXIST);
    /* a failing mkdir surfaces */
    fsio_fault_set(FSIO_OP_MKDIR, 0, ENOSPC, 0);
    assert_int_equal(fsio_mkdir_p(tmpdir_at("%s", "x/y"), 0755), WEIR_ENOSPC);
    fsio_fault_clear(FSIO_OP_MKDIR);
}

static void test_write_file_atomic(void **state)
{
    char b[64];
    assert_int_equal(fsio_write_file_atomic(tmpdir_at("%s", "c"), "one", 3, 0644), 0);
    assert_int_equal(fsio_write_file_atomic(tmpdir_at("%s", "c"), "two!", 4, 0644), 0);
    slurp(tmpdir_at("%s", "c"), b, sizeof(b));
    assert_string_equal(b, "two!");
    /* a failure at each step leaves the old content and no temp file */
    enum fsio_op ops[] = {FSIO_OP_OPEN, FSIO_OP_WRITE, FSIO_OP_FSYNC,
                          FSIO_OP_RENAME};
    for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
        fsio_fault_set(ops[i], 0, EIO, 0);
        assert_int_not_equal(
            fsio_write_file_atomic(tmpdir_at("%s", "c"), "three", 5, 0644), 0);
        fsio_fault_clear(ops[i]);
        slurp(tmpdir_at("%s", "c"), b, sizeof(b));
        assert_string_equal(b, "two!");
        assert_int_equal(count_entries(root), 1);
    }
    struct buf r = BUF_INIT(3);
    assert_int_equal(fsio_read_file(tmpdir_at("%s", "c"), &r), WEIR_ELIMIT);
    buf_release(&r);
    r.max = 16;
    assert_int_equal(fsio_read_file(tmpdir_at("%s", "c"), &r), 0);
    assert_string_equal(r.data, "two!");
    buf_release(&r);
    assert_int_equal(fsio_read_file(tmpdir_at("%s", "none"), &r), WEIR_ENOTFOUND);
}

static int fake_renameat2(int a, const char *f, int b, const char *t,
                          unsigned flags)
{
    errno = EINVAL; /* as on a filesystem without RENAME_NOREPLACE */
    return -1;
}

static void publish_twice(void)
{
    char b[64];
    assert_int_equal(fsio_publish_excl(tmpdir_at("%s", "v1"), "first", 5, 0644), 0);
    assert_int_equal(fsio_publish_excl(tmpdir_at("%s", "v1"), "second", 6, 0644),
                     WEIR_EEXIST);
    slurp(tmpdir_at("%s", "v1"), b, sizeof(b));
    assert_string_equal(b, "first");
    assert_int_equal(count_entries(root), 1); /* no temp left */
    unlink(tmpdir_at("%s", "v1"));
}

static void test_publish_excl(void **state)
{
    publish_twice();
    /* the link() path, where renameat2 is not supported */
    struct fsio_sys s;
    fsio_sys_get(&s);
    s.renameat2 = fake_renameat2;
    fsio_sys_set(&s);
    unsigned long links = fsio_fault_calls(FSIO_OP_LINK);
    publish_twice();
    assert_int_equal(fsio_fault_calls(FSIO_OP_LINK) - links, 2);
    /* a link that happened but whose unlink failed finishes on retry */
    close(open(tmpdir_at("%s", "t"), O_CREAT | O_WRONLY, 0644));
    fsio_fault_set(FSIO_OP_UNLINK, 0, EIO, 0);
    assert_int_equal(fsio_rename_excl(tmpdir_at("%s", "t"), tmpdir_at("%s", "u")), WEIR_EIO);
    fsio_fault_clear(FSIO_OP_UNLINK);
    assert_int_equal(fsio_rename_excl(tmpdir_at("%s", "t"), tmpdir_at("%s", "u")), 0);
    assert_int_equal(access(tmpdir_at("%s", "t"), F_OK), -1);
    assert_int_equal(access(tmpdir_at("%s", "u"), F_OK), 0);
    fsio_sys_set(NULL);
    /* renameat2 proper refuses to replace too */
    close(open(tmpdir_at("%s", "w"), O_CREAT | O_WRONLY, 0644));
    assert_int_equal(fsio_rename_excl(tmpdir_at("%s", "w"), tmpdir_at("%s", "u")), WEIR_EEXIST);
}

static void test_fault_counting(void **state)
{
    fsio_fault_reset();
    struct stat st;
    fsio_stat(root, &st);
    fsio_stat(root, &st);
    assert_int_equal(fsio_fault_calls(FSIO_OP_STAT), 2);
    struct fsio_fault f = {.after = 1, .times = 1, .err = EIO};
    fsio_fault_arm(FSIO_OP_STAT, &f);
    assert_int_equal(fsio_stat(root, &st), 0);
    assert_int_equal(fsio_stat(root, &st), -1);
    assert_int_equal(errno, EIO);
    assert_int_equal(fsio_stat(root, &st), 0);
    assert_int_equal(fsio_fault_hits(FSIO_OP_STAT), 1);
    fsio_fault_off();
    fsio_stat(root, &st);
    assert_int_equal(fsio_fault_calls(FSIO_OP_STAT), 0);
    assert_string_equal(fsio_op_name(FSIO_OP_FDATASYNC), "fdatasync");
}

static void test_names_and_lock(void **state)
{
    assert_true(fsio_name_valid("telemetry"));
    assert_true(fsio_name_valid("plant-01.a_b"));
    assert_false(fsio_name_valid(""));
    assert_false(fsio_name_valid("."));
    assert_false(fsio_name_valid(".."));
    assert_false(fsio_name_valid("../x"));
    assert_false(fsio_name_valid("a/b"));
    assert_false(fsio_name_valid("-x"));
    assert_false(fsio_name_valid(".hidden"));
    assert_false(fsio_name_valid("sp ace"));
    assert_false(fsio_name_valid(NULL));
    char longname[200];
    memset(longname, 'a', sizeof(longname) - 1);
    longname[199] = '\0';
    assert_false(fsio_name_valid(longname));
    assert_true(fsio_is_tmp_name("n1-0.tmp.123.4"));
    assert_true(fsio_is_tmp_name("00000000000000000042.json.tmp.99.0"));
    assert_false(fsio_is_tmp_name("host.tmp.x-0-0000000001.ndjson"));
    assert_false(fsio_is_tmp_name("n1-0.tmp.12"));
    assert_false(fsio_is_tmp_name("n1-0.tmp.12.x"));

    int a, b;
    assert_int_equal(fsio_lock_file(tmpdir_at("%s", "lock"), &a), 0);
    assert_int_equal(fsio_lock_file(tmpdir_at("%s", "lock"), &b), WEIR_ECONFLICT);
    assert_int_equal(b, -1);
    close(a);
    assert_int_equal(fsio_lock_file(tmpdir_at("%s", "lock"), &b), 0);
    close(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_write_all_short_and_eintr, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_all_disk_full, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fsync_faults, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mkdir_p, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_file_atomic, setup, teardown),
        cmocka_unit_test_setup_teardown(test_publish_excl, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fault_counting, setup, teardown),
        cmocka_unit_test_setup_teardown(test_names_and_lock, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
