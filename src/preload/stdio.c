/*
 * stdio.c - the shim's stdio and directory-stream entry points.  glibc's
 * fopen and opendir reach the kernel through internal calls no preload can
 * see, so for poise paths and descriptors these are served here: a FILE
 * from fopencookie whose read, write, seek and close are the shim's own,
 * and a DIR that is a snapshot of the directory ("." and ".." first, then
 * the entries).  Everything else goes to libc.
 */
#include "preload/shim.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>


/* ---- FILE ---- */

static ssize_t ck_read(void *c, char *buf, size_t n)
{
	return read((int)(intptr_t)c, buf, n);
}

static ssize_t ck_write(void *c, const char *buf, size_t n)
{
	ssize_t k = write((int)(intptr_t)c, buf, n);
	return k < 0 ? 0 : k; /* fopencookie: 0 reports the error */
}

static int ck_seek(void *c, off64_t *pos, int whence)
{
	off_t r = lseek((int)(intptr_t)c, *pos, whence);
	if (r < 0)
		return -1;
	*pos = r;
	return 0;
}

static int ck_close(void *c)
{
	return close((int)(intptr_t)c);
}

static int mode_flags(const char *m)
{
	int f = strchr(m, '+') ? O_RDWR : 0;
	if (m[0] == 'r')
		f |= strchr(m, '+') ? 0 : O_RDONLY;
	else if (m[0] == 'w')
		f |= (strchr(m, '+') ? 0 : O_WRONLY) | O_CREAT | O_TRUNC;
	else if (m[0] == 'a')
		f |= (strchr(m, '+') ? 0 : O_WRONLY) | O_CREAT | O_APPEND;
	else
		return -1;
	if (strchr(m, 'x'))
		f |= O_EXCL;
	return f;
}

FILE *fdopen(int fd, const char *mode)
{
	if (!shim_get_peek(fd)) {
		mnt_unown(fd); /* the stream's reads and writes, and its close, are the C library's own */
		mnt_forget(fd);
		return NEXT(fdopen)(fd, mode);
	}
	cookie_io_functions_t io = {ck_read, ck_write, ck_seek, ck_close};
	FILE *f = fopencookie((void *)(intptr_t)fd, mode, io);
	if (f)
		f->_fileno = fd; /* fileno() answers the number (glibc's I/O on the stream stays the cookie's) */
	if (f && strchr(mode, 'a'))
		fseeko(f, 0, SEEK_END);
	return f;
}

FILE *fopen(const char *path, const char *mode)
{
	const char *in;
	uint64_t at;
	if (!shim_at(AT_FDCWD, path, &at, &in))
		return NEXT(fopen)(path, mode);
	int fl = mode_flags(mode);
	if (fl < 0) {
		errno = EINVAL;
		return NULL;
	}
	int fd = open(path, fl, 0666);
	if (fd < 0)
		return NULL;
	FILE *f = fdopen(fd, mode);
	if (!f)
		close(fd);
	return f;
}

FILE *fopen64(const char *path, const char *mode) __attribute__((alias("fopen")));

/* ---- DIR ---- */

#define SDIR_MAGIC 0x52494453u /* "SDIR" */
struct sdir {
	uint32_t magic;
	int fd;
	long pos; /* 0 ".", 1 "..", 2 + i entry i */
	struct poise_dir *d;
	struct dirent ent;
};

static struct sdir *open_dirs[1024];
static pthread_mutex_t dirs_lock = PTHREAD_MUTEX_INITIALIZER;

static struct sdir *ours(void *p)
{
	struct sdir *r = NULL;
	pthread_mutex_lock(&dirs_lock);
	for (int i = 0; i < 1024 && !r; i++)
		if (open_dirs[i] && (void *)open_dirs[i] == p)
			r = open_dirs[i];
	pthread_mutex_unlock(&dirs_lock);
	return r;
}

DIR *fdopendir(int fd)
{
	struct pfile *f = shim_get(fd);
	if (!f)
		return NEXT(fdopendir)(fd);
	struct sdir *s = calloc(1, sizeof(*s));
	int r = !f->isdir ? -ENOTDIR : !s ? -ENOMEM : poise_opendirat(shim_pool, f->ino, "", &s->d);
	shim_put(f);
	pthread_mutex_lock(&dirs_lock);
	int slot = -1;
	for (int i = 0; r == 0 && i < 1024 && slot < 0; i++)
		if (!open_dirs[i])
			slot = i;
	if (r == 0 && slot < 0)
		r = -EMFILE;
	if (r == 0) {
		s->magic = SDIR_MAGIC;
		s->fd = fd;
		open_dirs[slot] = s;
	}
	pthread_mutex_unlock(&dirs_lock);
	if (r < 0) {
		if (s && s->d)
			poise_closedir(&s->d);
		free(s);
		errno = -r;
		return NULL;
	}
	return (DIR *)s;
}

DIR *opendir(const char *path)
{
	const char *in;
	uint64_t at;
	if (!shim_at(AT_FDCWD, path, &at, &in))
		return NEXT(opendir)(path);
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC); /* as glibc's opendir */
	if (fd < 0)
		return NULL;
	DIR *d = fdopendir(fd);
	if (!d) {
		int e = errno;
		close(fd);
		errno = e;
	}
	return d;
}

int shim_dir_entry(int fd, struct poise_dir *d, long pos, struct poise_entry *e)
{
	memset(e, 0, sizeof(*e));
	if (pos < 2) {
		struct stat st;
		strcpy(e->name, pos ? ".." : ".");
		e->type = DT_DIR;
		e->ino = fstatat(fd, pos ? ".." : "", &st, pos ? 0 : AT_EMPTY_PATH) == 0 ? st.st_ino : 1;
		return 1;
	}
	poise_seekdir(d, pos - 2);
	return poise_readdir(d, e) == 1;
}

struct dirent *readdir(DIR *dp)
{
	struct sdir *s = ours(dp);
	if (!s)
		return NEXT(readdir)(dp);
	struct dirent *e = &s->ent;
	struct poise_entry pe;
	if (!shim_dir_entry(s->fd, s->d, s->pos, &pe))
		return NULL;
	memset(e, 0, sizeof(*e));
	e->d_ino = pe.ino;
	e->d_type = pe.type;
	snprintf(e->d_name, sizeof(e->d_name), "%s", pe.name);
	s->pos++;
	e->d_off = s->pos;
	e->d_reclen = sizeof(*e);
	return e;
}

struct dirent64 *readdir64(DIR *dp)
{
	if (!ours(dp))
		return NEXT(readdir64)(dp);
	return (struct dirent64 *)readdir(dp); /* the same layout on 64-bit */
}

int closedir(DIR *dp)
{
	struct sdir *s = ours(dp);
	if (!s)
		return NEXT(closedir)(dp);
	pthread_mutex_lock(&dirs_lock);
	for (int i = 0; i < 1024; i++)
		if (open_dirs[i] == s)
			open_dirs[i] = NULL;
	pthread_mutex_unlock(&dirs_lock);
	poise_closedir(&s->d);
	int r = close(s->fd);
	free(s);
	return r;
}

int dirfd(DIR *dp)
{
	struct sdir *s = ours(dp);
	return s ? s->fd : NEXT(dirfd)(dp);
}

void rewinddir(DIR *dp)
{
	struct sdir *s = ours(dp);
	if (s)
		s->pos = 0;
	else
		NEXT(rewinddir)(dp);
}

long telldir(DIR *dp)
{
	struct sdir *s = ours(dp);
	return s ? s->pos : NEXT(telldir)(dp);
}

void seekdir(DIR *dp, long pos)
{
	struct sdir *s = ours(dp);
	if (s)
		s->pos = pos < 0 ? 0 : pos;
	else
		NEXT(seekdir)(dp, pos);
}
