/*
 * bench_create.c - create and unlink from several processes: each of PROCS
 * forked processes creates and unlinks files of its own in DIR for SECONDS;
 * prints the total pairs per second.  For bench/procs.sh (run under the
 * shim or not: the calls are plain system calls).
 * Usage: bench_create DIR PROCS SECONDS
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: bench_create DIR PROCS SECONDS\n");
		return 2;
	}
	int procs = atoi(argv[2]);
	double secs = atof(argv[3]);
	int pfd[2];
	if (procs < 1 || procs > 64 || secs <= 0 || pipe(pfd) < 0)
		return 2;
	for (int p = 0; p < procs; p++) {
		if (fork() == 0) {
			char name[4200];
			long n = 0;
			double end = now() + secs;
			while (now() < end) {
				for (int i = 0; i < 64; i++, n++) {
					snprintf(name, sizeof(name), "%s/c%d.%ld", argv[1], p, n);
					int fd = open(name, O_CREAT | O_EXCL | O_WRONLY, 0644);
					if (fd < 0 || close(fd) < 0 || unlink(name) < 0)
						_exit(1);
				}
			}
			if (write(pfd[1], &n, sizeof(n)) != sizeof(n))
				_exit(1);
			_exit(0);
		}
	}
	long total = 0, n;
	int bad = 0, st;
	for (int p = 0; p < procs; p++) {
		if (read(pfd[0], &n, sizeof(n)) == sizeof(n))
			total += n;
		else
			bad = 1;
	}
	while (wait(&st) > 0)
		bad |= !WIFEXITED(st) || WEXITSTATUS(st);
	printf("%.0f\n", bad ? 0 : total / secs);
	return bad;
}
