/*
 * fault.c - see fault.h.  Counters are atomic: the fault loop may run
 * multithreaded workloads.
 */
#include "common/fault.h"

int poise_fault_armed;
static int armed_kind;
static long countdown, fired;

void poise_fault_arm(enum poise_fault_kind kind, long n)
{
	armed_kind = (int)kind;
	__atomic_store_n(&fired, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&countdown, n, __ATOMIC_RELAXED);
	__atomic_store_n(&poise_fault_armed, n > 0, __ATOMIC_RELEASE);
}

int poise_fault_hit(enum poise_fault_kind kind)
{
	if ((int)kind != armed_kind)
		return 0;
	if (__atomic_sub_fetch(&countdown, 1, __ATOMIC_RELAXED) != 0)
		return 0;
	__atomic_store_n(&fired, 1, __ATOMIC_RELAXED);
	return 1;
}

int poise_fault_fired(void)
{
	return (int)__atomic_load_n(&fired, __ATOMIC_RELAXED);
}
