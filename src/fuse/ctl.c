/*
 * ctl.c - the control channel of a mounted pool (stub until the channel
 * lands: see pfuse.h).
 */
#include "fuse/pfuse.h"

int pfuse_ctl_start(struct pfuse *pf)
{
	(void)pf;
	return 0;
}

void pfuse_ctl_stop(void)
{
}
