/*
 * mcsafe.c - the fault side of the machine-check-safe copy.
 *
 * One process-wide SIGBUS+SIGSEGV handler.  It recovers a fault only when
 * both hold:
 *   (1) the faulting instruction lies in the guarded copy routines
 *       [poise_mc_text_begin, poise_mc_text_end) of mcsafe_x86_64.S, and
 *   (2) the faulting address lies in a registered pool range.
 * It then resumes the routine at poise_mc_fixup with the fault offset.
 * Everything else (a wild pointer, a fault in ordinary code, a fault on the
 * user's own buffer) is passed to the handler that was installed before us,
 * or re-raised with the default action: a real crash stays a crash.  One
 * translation: a SIGSEGV on a protected (emulated-poison) page of a pool,
 * outside a guarded copy, is delivered as the SIGBUS BUS_MCEERR_AR real
 * poison raises, so applications with a direct map see real semantics.
 *
 * The program's own handlers for the two signals, set after ours through
 * poise_sigaction() (the shim sends sigaction() and signal() there), become
 * the ones we chain to, so ours stays first.
 *
 * Invariants: the registry is an array of (base, len) pairs written under
 * reg_lock and read lock-free by the handler (atomic loads; a slot's base is
 * published last and cleared first).  The handler touches no lock and no
 * TLS, so it is async-signal-safe.
 */
#include "dev/mcsafe.h"
#include "poise-admin.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <ucontext.h>

extern const char poise_mc_text_begin[], poise_mc_text_end[], poise_mc_small_end[];
extern const char poise_mc_fixup[], poise_mc_fixup_avx[];
extern unsigned char poise_mc_have_avx2; /* read by the assembly */

static struct {
	uintptr_t base; /* 0 = free slot */
	uintptr_t len;
} ranges[POISE_MC_MAX_RANGES];
static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
/* The handlers we pass other faults to (the program's): two slots per
 * signal, the live one published by index, so a handler in flight reads a
 * whole struct, never one half written by poise_sigaction (which takes no
 * lock: it may run inside a signal handler).  Two threads setting the same
 * signal's handler at once may lose one of the two settings. */
static struct sigaction prog[2][2]; /* [SIGSEGV, SIGBUS][slot] */
static int live[2];
static int sigk(int sig)
{
	return sig == SIGBUS;
}
static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static int init_err, installed;

static int in_pool(uintptr_t a)
{
	for (int i = 0; i < POISE_MC_MAX_RANGES; i++) {
		uintptr_t b = __atomic_load_n(&ranges[i].base, __ATOMIC_ACQUIRE);
		if (b && a >= b && a - b < __atomic_load_n(&ranges[i].len, __ATOMIC_RELAXED))
			return 1;
	}
	return 0;
}

static void set_prog(int k, const struct sigaction *a)
{
	int next = 1 - __atomic_load_n(&live[k], __ATOMIC_ACQUIRE);
	prog[k][next] = *a;
	__atomic_store_n(&live[k], next, __ATOMIC_RELEASE);
}

static void chain(int sig, siginfo_t *si, void *uc)
{
	int k = sigk(sig);
	struct sigaction old = prog[k][__atomic_load_n(&live[k], __ATOMIC_ACQUIRE)];
	void (*h)(int) = old.sa_handler;
	if ((old.sa_flags & SA_SIGINFO) ? old.sa_sigaction != NULL : (h != SIG_DFL && h != SIG_IGN)) {
		/* the program's handler, as the kernel would run it: its mask
		 * added for the call, reset first when it asked for that */
		sigset_t before;
		pthread_sigmask(SIG_BLOCK, &old.sa_mask, &before);
		if (old.sa_flags & SA_RESETHAND) {
			struct sigaction dfl;
			memset(&dfl, 0, sizeof(dfl));
			dfl.sa_handler = SIG_DFL;
			set_prog(k, &dfl);
		}
		if (old.sa_flags & SA_SIGINFO)
			old.sa_sigaction(sig, si, uc);
		else
			h(sig);
		pthread_sigmask(SIG_SETMASK, &before, NULL);
		return;
	}
	if (h == SIG_IGN && si->si_code <= 0)
		return; /* sent by kill() or raise(), and ignored */
	/* The default action (a fault ignored gets it too, as from the
	 * kernel): reinstall it; a fault runs its instruction again and the
	 * kernel kills the process; a signal sent by kill() or raise() is
	 * raised again, unblocked. */
	signal(sig, SIG_DFL);
	if (si->si_code <= 0) {
		sigset_t m;
		sigemptyset(&m);
		sigaddset(&m, sig);
		pthread_sigmask(SIG_UNBLOCK, &m, NULL);
		raise(sig);
	}
}

int poise_mc_pending;
static uint64_t pending[64];

/* From the handler: async-signal-safe (atomics only); a full list drops the
 * report (the access itself will fault again inside a guarded copy). */
void poise_mc_remember(uint64_t fault)
{
	for (int i = 0; i < 64; i++) {
		uint64_t zero = 0;
		if (__atomic_compare_exchange_n(&pending[i], &zero, fault, 0, __ATOMIC_RELEASE, __ATOMIC_RELAXED))
			break;
	}
	__atomic_store_n(&poise_mc_pending, 1, __ATOMIC_RELEASE);
}

uint64_t poise_mc_take(void)
{
	__atomic_store_n(&poise_mc_pending, 0, __ATOMIC_RELEASE);
	for (int i = 0; i < 64; i++) {
		uint64_t a = __atomic_exchange_n(&pending[i], 0, __ATOMIC_ACQ_REL);
		if (a) {
			__atomic_store_n(&poise_mc_pending, 1, __ATOMIC_RELEASE); /* maybe more */
			return a;
		}
	}
	return 0;
}

/* Is rip just after a `syscall` instruction (0f 05)?  A machine check
 * reported there was found by the kernel on the task's behalf (memory
 * failure handling, an injection), not raised by an instruction that would
 * fault again. */
static int after_syscall(uintptr_t rip)
{
	const uint8_t *p = (const uint8_t *)rip;
	return rip > 2 && p[-2] == 0x0f && p[-1] == 0x05;
}

static void handler(int sig, siginfo_t *si, void *ucv)
{
	ucontext_t *uc = ucv;
	greg_t *g = uc->uc_mcontext.gregs;
	uintptr_t rip = (uintptr_t)g[REG_RIP];
	uintptr_t addr = (uintptr_t)si->si_addr;

	if (sig == SIGBUS && (si->si_code == BUS_MCEERR_AO ||
			      (si->si_code == BUS_MCEERR_AR && in_pool(addr) && after_syscall(rip)))) {
		/* a report, not a faulting access: remember the page (the
		 * device layer adds it to its table) and go on */
		if (in_pool(addr))
			poise_mc_remember(addr | POISE_MC_FAULT_MCE | (uint64_t)(si->si_addr_lsb & 0x7f) << POISE_MC_LSB_SHIFT);
		return;
	}
	if (rip < (uintptr_t)poise_mc_text_begin || rip >= (uintptr_t)poise_mc_text_end ||
	    !in_pool(addr)) {
		if (sig == SIGSEGV && si->si_code == SEGV_ACCERR && in_pool(addr)) {
			/* a load or store on emulated poison outside a guarded
			 * copy (a direct map): what real poison does, SIGBUS
			 * with BUS_MCEERR_AR for the page */
			siginfo_t bus = *si;
			bus.si_signo = SIGBUS;
			bus.si_code = BUS_MCEERR_AR;
			bus.si_addr_lsb = 12;
			const struct sigaction *ob = &prog[1][__atomic_load_n(&live[1], __ATOMIC_ACQUIRE)];
			int dfl = !(ob->sa_flags & SA_SIGINFO) && (ob->sa_handler == SIG_DFL || ob->sa_handler == SIG_IGN);
			chain(SIGBUS, &bus, ucv);
			if (dfl) {
				sigset_t m;
				sigemptyset(&m);
				sigaddset(&m, SIGBUS);
				sigprocmask(SIG_UNBLOCK, &m, NULL);
				raise(SIGBUS); /* default action: the process dies of SIGBUS */
			}
			return;
		}
		chain(sig, si, ucv);
		return;
	}
	/* where the routine keeps its arguments (see mcsafe_x86_64.S) */
	int small = rip < (uintptr_t)poise_mc_small_end;
	uintptr_t src = (uintptr_t)g[small ? REG_RSI : REG_R8];
	uintptr_t dst = (uintptr_t)g[small ? REG_RDI : REG_R9];
	uintptr_t len = (uintptr_t)g[small ? REG_RDX : REG_R10], done = 0;
	if (addr >= src && addr - src < len)
		done = addr - src;
	else if (addr >= dst && addr - dst < len)
		done = addr - dst;
	g[REG_RAX] = (greg_t)done;
	g[REG_RDX] = (greg_t)(addr | (sig == SIGBUS && si->si_code == BUS_MCEERR_AR
					       ? POISE_MC_FAULT_MCE | (uint64_t)(si->si_addr_lsb & 0x7f) << POISE_MC_LSB_SHIFT
					       : 0));
	g[REG_RIP] = (greg_t)(uintptr_t)(poise_mc_have_avx2 ? poise_mc_fixup_avx : poise_mc_fixup);
}

static void do_init(void)
{
	__builtin_cpu_init();
	poise_mc_have_avx2 = __builtin_cpu_supports("avx2") ? 1 : 0;
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = handler;
	sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGSEGV, &sa, &prog[0][0]) || sigaction(SIGBUS, &sa, &prog[1][0]))
		init_err = -errno;
	else
		__atomic_store_n(&installed, 1, __ATOMIC_RELEASE);
}

/* The program's own handlers: with ours installed they become the ones we
 * chain to (a handler swap is not atomic with a fault in flight: the fault
 * then sees the old or the new one, both the program's). */
int poise_sigaction(int sig, const struct sigaction *act, struct sigaction *old)
{
	if ((sig != SIGSEGV && sig != SIGBUS) || !__atomic_load_n(&installed, __ATOMIC_ACQUIRE))
		return sigaction(sig, act, old);
	int k = sigk(sig);
	struct sigaction cur = prog[k][__atomic_load_n(&live[k], __ATOMIC_ACQUIRE)];
	if (act)
		set_prog(k, act);
	if (old)
		*old = cur;
	return 0;
}

int poise_mc_init(void)
{
	pthread_once(&init_once, do_init);
	return init_err;
}

int poise_mc_register(const void *base, size_t len)
{
	int ret = -ENOSPC;
	pthread_mutex_lock(&reg_lock);
	for (int i = 0; i < POISE_MC_MAX_RANGES; i++) {
		if (ranges[i].base)
			continue;
		__atomic_store_n(&ranges[i].len, len, __ATOMIC_RELAXED);
		__atomic_store_n(&ranges[i].base, (uintptr_t)base, __ATOMIC_RELEASE);
		ret = 0;
		break;
	}
	pthread_mutex_unlock(&reg_lock);
	return ret;
}

void poise_mc_unregister(const void *base)
{
	pthread_mutex_lock(&reg_lock);
	for (int i = 0; i < POISE_MC_MAX_RANGES; i++)
		if (ranges[i].base == (uintptr_t)base)
			__atomic_store_n(&ranges[i].base, 0, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&reg_lock);
}

size_t poise_mc_copy_fault(void *dst, const void *src, struct poise_mc_result r, uint64_t *fault)
{
	/* The routines may load ahead of their stores (small copies, the
	 * overlapping tail), so the prefix before the fault is copied again;
	 * each retry is strictly shorter, so this ends. */
	size_t good = r.done;
	*fault = r.fault;
	while (good) {
		r = poise_mc_memcpy(dst, src, good);
		if (r.done == good)
			break;
		good = r.done;
		*fault = r.fault; /* a lower faulting address */
	}
	return good;
}
