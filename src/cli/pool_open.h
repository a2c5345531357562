/*
 * pool_open.h - open a pool for a CLI command, printing the backend's
 * warnings (a refused MAP_SYNC, ...) on stderr.
 */
#ifndef POISE_CLI_POOL_OPEN_H
#define POISE_CLI_POOL_OPEN_H

#include "poise-admin.h"

/* 0, or EXIT_FAIL after printing "poise: CMD: message". */
int cli_open_dev(const char *cmd, const char *path, struct poise_dev **d);

#endif
