/*
 * util.c - argument parsing and error printing for the `poise` command.
 */
#include "cli/cli.h"
#include "poise.h"
#include "poise-admin.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int cli_parse_u64(const char *s, uint64_t *v)
{
	char *end;
	if (!s || !*s || *s == '-' || *s == '+')
		return -1;
	errno = 0;
	unsigned long long x = strtoull(s, &end, 0);
	if (errno || *end)
		return -1;
	*v = x;
	return 0;
}

int cli_parse_size(const char *s, uint64_t *v)
{
	char *end;
	if (!s || !*s || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	unsigned long long x = strtoull(s, &end, 10);
	if (errno)
		return -1;
	unsigned shift = 0;
	switch (*end) {
	case 0: break;
	case 'k': case 'K': shift = 10; break;
	case 'm': case 'M': shift = 20; break;
	case 'g': case 'G': shift = 30; break;
	case 't': case 'T': shift = 40; break;
	default: return -1;
	}
	if (*end && end[1] && strcmp(end + 1, "iB") && strcmp(end + 1, "B"))
		return -1;
	if (shift && x > (UINT64_MAX >> shift))
		return -1;
	*v = (uint64_t)x << shift;
	return 0;
}

int cli_fail(int err, const char *fmt, ...)
{
	va_list ap;
	fputs("poise: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	if (err < 0 && poise_errmsg()[0])
		fprintf(stderr, ": %s", poise_errmsg());
	else if (err < 0)
		fprintf(stderr, ": %s", strerror(-err));
	fputc('\n', stderr);
	return EXIT_FAIL;
}

int cli_usage(const struct cli_cmd *c, const char *fmt, ...)
{
	va_list ap;
	fputs("poise: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nusage: poise %s\n", c->usage);
	return EXIT_USAGE;
}

int cli_help(const struct cli_cmd *c)
{
	printf("usage: poise %s\n", c->usage);
	if (c->help)
		printf("\n%s", c->help);
	return EXIT_OK;
}

int cli_wants_help(int argc, char **argv)
{
	for (int i = 0; i < argc; i++)
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
			return 1;
	return 0;
}

void cli_json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

int cli_write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	while (len) {
		ssize_t k = write(fd, p, len);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return -errno;
		p += k;
		len -= (size_t)k;
	}
	return 0;
}

/* GNU ls's shell-escape quoting, for names that hold control characters
 * (a newline in a name must not make two lines of output): 'a'$'\n''b'.
 * Other names print as they are. */
void cli_print_name(FILE *f, const char *s)
{
	int ctl = 0;
	for (const unsigned char *c = (const unsigned char *)s; *c; c++)
		ctl |= *c < 0x20 || *c == 0x7f;
	if (!ctl) {
		fputs(s, f);
		return;
	}
	int open = 0;
	for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
		if (*c < 0x20 || *c == 0x7f) {
			if (open)
				fputc('\'', f);
			open = 0;
			switch (*c) {
			case '\n': fputs("$'\\n'", f); break;
			case '\t': fputs("$'\\t'", f); break;
			case '\r': fputs("$'\\r'", f); break;
			default: fprintf(f, "$'\\%03o'", *c); break;
			}
			continue;
		}
		if (!open)
			fputc('\'', f);
		open = 1;
		if (*c == '\'')
			fputs("'\\''", f);
		else
			fputc(*c, f);
	}
	if (open)
		fputc('\'', f);
}

void cli_warn_mode(const char *path, const struct stat *st)
{
	if ((S_ISREG(st->st_mode) || S_ISCHR(st->st_mode)) && (st->st_mode & 0044))
		fprintf(stderr,
			"poise: warning: %s can be read by %s (mode %04o): it holds every file's bytes; "
			"chmod 600 it\n",
			path, (st->st_mode & 0004) ? "every user" : "its group", (unsigned)(st->st_mode & 07777));
}

void cli_warn_exposed(const char *path)
{
	struct stat st;
	if (stat(path, &st) == 0)
		cli_warn_mode(path, &st);
}
