/*
 * mcsafe.h - machine-check-safe copies between user buffers and pool memory.
 *
 * poise_mc_copy() is a memcpy that, instead of dying, stops at the first byte
 * it cannot read or write inside a registered pool range (real poison:
 * SIGBUS BUS_MCEERR_AR; emulated poison: SIGSEGV on a PROT_NONE page) and
 * tells the caller where.  The fast path is a plain copy loop; see
 * mcsafe_x86_64.S for the exception-table design.
 *
 * Lock rules: none.  The handler is async-signal-safe and reads the range
 * registry lock-free; registration takes a mutex.
 */
#ifndef POISE_MCSAFE_H
#define POISE_MCSAFE_H

#include <stddef.h>
#include <stdint.h>

/* Bit 63 of .fault: the kernel reported a machine check (BUS_MCEERR_AR);
 * bits 48-55: the report's granularity (si_addr_lsb: 12 for a 4 KiB page,
 * 21 when a devdax device reports its 2 MiB mapping unit); bits 0-47: the
 * address. */
#define POISE_MC_FAULT_MCE (1ULL << 63)
#define POISE_MC_LSB_SHIFT 48
#define POISE_MC_ADDR(f) ((f) & ((1ULL << POISE_MC_LSB_SHIFT) - 1))
#define POISE_MC_LSB(f) ((unsigned)((f) >> POISE_MC_LSB_SHIFT) & 0x7f)

struct poise_mc_result {
	uint64_t done;  /* == len on success; else bytes before the fault */
	uint64_t fault; /* 0, or the faulting address (| POISE_MC_FAULT_MCE) */
};

/* The raw routines (assembly).  Do not call without poise_mc_init(). */
struct poise_mc_result poise_mc_memcpy(void *dst, const void *src, size_t len);
struct poise_mc_result poise_mc_memcpy_nt(void *dst, const void *src, size_t len);

/* Install the SIGBUS/SIGSEGV handler once (idempotent, thread-safe).
 * Returns 0 or -errno. */
int poise_mc_init(void);

/* Register / unregister [base, base+len) as pool memory whose faults are
 * recoverable inside a guarded copy.  Returns 0, or -ENOSPC when
 * POISE_MC_MAX_RANGES ranges are registered. */
/* Machine-check reports the handler could not act on at once (the kernel's
 * asynchronous BUS_MCEERR_AO, or BUS_MCEERR_AR delivered at a system call's
 * return, as a memory-failure injection does): pool addresses waiting for
 * the device layer to add their pages to its table.  poise_mc_pending is
 * nonzero while any wait; poise_mc_take() hands them out (0 at the end). */
extern int poise_mc_pending;
uint64_t poise_mc_take(void);
void poise_mc_remember(uint64_t fault); /* the fault word above; async-signal-safe */

#define POISE_MC_MAX_RANGES 64
int poise_mc_register(const void *base, size_t len);
void poise_mc_unregister(const void *base);

/* After a fault: make the returned prefix really copied (see below). */
size_t poise_mc_copy_fault(void *dst, const void *src, struct poise_mc_result r, uint64_t *fault);

/*
 * Guarded copy.  Returns the number of bytes copied from the start (== len
 * when nothing faulted).  On a fault the returned prefix is really copied
 * (re-copied if needed) and *fault is set to the lowest faulting address
 * found; *fault is written only then.  nt != 0 uses non-temporal stores for
 * len >= 256 (the caller then persists the first and last cache line and
 * fences).  Inline: on small cold copies the loop is bound by how many
 * iterations fit in the CPU's reorder buffer, so every instruction counts.
 */
static inline size_t poise_mc_copy(void *dst, const void *src, size_t len, int nt,
				   uint64_t *fault)
{
	struct poise_mc_result r = nt && len >= 256 ? poise_mc_memcpy_nt(dst, src, len)
						    : poise_mc_memcpy(dst, src, len);
	if (__builtin_expect(r.done == len, 1))
		return len;
	return poise_mc_copy_fault(dst, src, r, fault);
}

#endif
