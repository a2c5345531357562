/*
 * mcsafe_x86_64.S - the machine-check-safe copy routines (x86-64, System V).
 *
 * What: leaf copy routines that may fault on poisoned or protected pool
 * memory.  They live between poise_mc_text_begin and poise_mc_text_end; the
 * SIGBUS/SIGSEGV handler in mcsafe.c recognises a fault whose RIP lies in
 * that range and whose address lies in a registered pool, and resumes at
 * poise_mc_fixup with RAX = bytes before the faulting address (relative to
 * whichever of src/dst faulted) and RDX = the faulting address (bit 63 set
 * when the kernel reported a machine check).  This is the kernel's copy_mc
 * design (exception-table fixup): the fast path pays nothing.
 *
 * Invariants the handler relies on (keep them when editing):
 *  - no stack use: RSP at any instruction equals RSP at entry, so the fixup's
 *    `ret` returns to the caller;
 *  - no callee-saved register (rbx, rbp, r12-r15) is touched;
 *  - in [poise_mc_text_begin, poise_mc_small_end) (copies of at most 64
 *    bytes) rdi, rsi, rdx keep dst, src, len throughout;
 *  - after poise_mc_small_end, r8 = src, r9 = dst, r10 = len from before
 *    the first instruction that can fault until the return;
 *  - vector registers are caller-saved; every AVX exit runs vzeroupper
 *    (so does poise_mc_fixup_avx, the landing point on AVX machines).
 * Both return struct poise_mc_result { uint64 done (rax); uint64 fault (rdx) }:
 * done == len on success (rdx is then meaningless).
 * Bytes below `done` are not guaranteed copied (small copies load all before
 * they store); the C caller re-copies the prefix, see mcsafe.c.
 *
 * Small copies are written for instruction count: with cold source lines
 * the loop of a caller is bound by how many iterations fit in the CPU's
 * reorder buffer, so every instruction on the <= 64-byte path costs.
 */
	.text
	.globl	poise_mc_text_begin
	.hidden	poise_mc_text_begin
poise_mc_text_begin:

/* struct poise_mc_result poise_mc_memcpy(void *dst, const void *src, size_t len) */
	.globl	poise_mc_memcpy
	.type	poise_mc_memcpy, @function
	.p2align 5
poise_mc_memcpy:
	mov	%rdx, %rax
	cmp	$32, %rdx
	ja	.Labove32
	cmp	$16, %rdx
	jb	.Lsmall16
	movdqu	(%rsi), %xmm0		/* 16..32 */
	movdqu	-16(%rsi,%rdx), %xmm1
	movdqu	%xmm0, (%rdi)
	movdqu	%xmm1, -16(%rdi,%rdx)
	ret
.Labove32:
	cmp	$64, %rdx
	ja	.Lbig
	movdqu	(%rsi), %xmm0		/* 33..64 */
	movdqu	16(%rsi), %xmm1
	movdqu	-32(%rsi,%rdx), %xmm2
	movdqu	-16(%rsi,%rdx), %xmm3
	movdqu	%xmm0, (%rdi)
	movdqu	%xmm1, 16(%rdi)
	movdqu	%xmm2, -32(%rdi,%rdx)
	movdqu	%xmm3, -16(%rdi,%rdx)
	ret
.Lsmall16:
	cmp	$8, %rdx
	jb	.Lsmall8
	mov	(%rsi), %rcx
	mov	-8(%rsi,%rdx), %r11
	mov	%rcx, (%rdi)
	mov	%r11, -8(%rdi,%rdx)
	ret
.Lsmall8:
	cmp	$4, %rdx
	jb	.Lsmall4
	mov	(%rsi), %ecx
	mov	-4(%rsi,%rdx), %r11d
	mov	%ecx, (%rdi)
	mov	%r11d, -4(%rdi,%rdx)
	ret
.Lsmall4:
	test	%rdx, %rdx
	jz	.Lsmallret
	movzbl	(%rsi), %ecx
	movzbl	-1(%rsi,%rdx), %r11d
	cmp	$2, %rdx
	jbe	.Lsmall2
	movzbl	1(%rsi), %r10d
	mov	%r10b, 1(%rdi)
.Lsmall2:
	mov	%cl, (%rdi)
	mov	%r11b, -1(%rdi,%rdx)
.Lsmallret:
	ret
	.globl	poise_mc_small_end
	.hidden	poise_mc_small_end
poise_mc_small_end:

.Lbig:
	mov	%rsi, %r8
	mov	%rdi, %r9
	mov	%rdx, %r10
	cmp	$1024, %rdx
	jae	.Lrep
	cmpb	$0, poise_mc_have_avx2(%rip)
	je	.Lrep
	cmp	$128, %rdx
	jbe	.L65to128
	cmp	$256, %rdx
	jbe	.L129to256
	/* 257..1023: 128 bytes per iteration; the last 128 loaded up front */
	vmovdqu	-128(%rsi,%rdx), %ymm4
	vmovdqu	-96(%rsi,%rdx), %ymm5
	vmovdqu	-64(%rsi,%rdx), %ymm6
	vmovdqu	-32(%rsi,%rdx), %ymm7
	lea	-128(%rdi,%rdx), %r11
	mov	%rdx, %rcx
	shr	$7, %rcx
.Lloop128:
	vmovdqu	(%rsi), %ymm0
	vmovdqu	32(%rsi), %ymm1
	vmovdqu	64(%rsi), %ymm2
	vmovdqu	96(%rsi), %ymm3
	vmovdqu	%ymm0, (%rdi)
	vmovdqu	%ymm1, 32(%rdi)
	vmovdqu	%ymm2, 64(%rdi)
	vmovdqu	%ymm3, 96(%rdi)
	sub	$-128, %rsi
	sub	$-128, %rdi
	dec	%rcx
	jnz	.Lloop128
	vmovdqu	%ymm4, (%r11)
	vmovdqu	%ymm5, 32(%r11)
	vmovdqu	%ymm6, 64(%r11)
	vmovdqu	%ymm7, 96(%r11)
	vzeroupper
	ret
.L129to256:
	vmovdqu	(%rsi), %ymm0
	vmovdqu	32(%rsi), %ymm1
	vmovdqu	64(%rsi), %ymm2
	vmovdqu	96(%rsi), %ymm3
	vmovdqu	-128(%rsi,%rdx), %ymm4
	vmovdqu	-96(%rsi,%rdx), %ymm5
	vmovdqu	-64(%rsi,%rdx), %ymm6
	vmovdqu	-32(%rsi,%rdx), %ymm7
	vmovdqu	%ymm0, (%rdi)
	vmovdqu	%ymm1, 32(%rdi)
	vmovdqu	%ymm2, 64(%rdi)
	vmovdqu	%ymm3, 96(%rdi)
	vmovdqu	%ymm4, -128(%rdi,%rdx)
	vmovdqu	%ymm5, -96(%rdi,%rdx)
	vmovdqu	%ymm6, -64(%rdi,%rdx)
	vmovdqu	%ymm7, -32(%rdi,%rdx)
	vzeroupper
	ret
.L65to128:
	vmovdqu	(%rsi), %ymm0
	vmovdqu	32(%rsi), %ymm1
	vmovdqu	-64(%rsi,%rdx), %ymm2
	vmovdqu	-32(%rsi,%rdx), %ymm3
	vmovdqu	%ymm0, (%rdi)
	vmovdqu	%ymm1, 32(%rdi)
	vmovdqu	%ymm2, -64(%rdi,%rdx)
	vmovdqu	%ymm3, -32(%rdi,%rdx)
	vzeroupper
	ret
.Lrep:					/* >= 1024, or no AVX2 */
	mov	%rdx, %rcx
	rep movsb
	ret
	.size	poise_mc_memcpy, .-poise_mc_memcpy

/* struct poise_mc_result poise_mc_memcpy_nt(void *dst, const void *src, size_t len)
 * Non-temporal stores for the aligned body; len >= 64 (the caller's rule).
 * The first and last 16 bytes use ordinary stores: the caller flushes the
 * first and last cache line and fences. */
	.globl	poise_mc_memcpy_nt
	.type	poise_mc_memcpy_nt, @function
	.p2align 5
poise_mc_memcpy_nt:
	cmp	$64, %rdx
	jb	poise_mc_memcpy		/* safety net */
	mov	%rsi, %r8
	mov	%rdi, %r9
	mov	%rdx, %r10
	movdqu	(%rsi), %xmm0		/* head: 16 bytes, ordinary store */
	movdqu	-16(%rsi,%rdx), %xmm7	/* tail: loaded now, stored last */
	movdqu	%xmm0, (%rdi)
	lea	(%rdi,%rdx), %r11	/* dst end */
	mov	%rdi, %rcx
	add	$16, %rcx
	and	$-16, %rcx		/* first 16-aligned dst after the head */
	sub	%rdi, %rcx
	add	%rcx, %rsi
	add	%rcx, %rdi
	sub	%rcx, %rdx		/* bytes left, dst now 16-aligned */
	mov	%rdx, %rcx
	shr	$6, %rcx
	jz	.Lnt16
.Lntloop:
	movdqu	(%rsi), %xmm0
	movdqu	16(%rsi), %xmm1
	movdqu	32(%rsi), %xmm2
	movdqu	48(%rsi), %xmm3
	movntdq	%xmm0, (%rdi)
	movntdq	%xmm1, 16(%rdi)
	movntdq	%xmm2, 32(%rdi)
	movntdq	%xmm3, 48(%rdi)
	add	$64, %rsi
	add	$64, %rdi
	dec	%rcx
	jnz	.Lntloop
.Lnt16:
	and	$63, %rdx
	shr	$4, %rdx
	jz	.Lnttail
.Lnt16loop:
	movdqu	(%rsi), %xmm0
	movntdq	%xmm0, (%rdi)
	add	$16, %rsi
	add	$16, %rdi
	dec	%rdx
	jnz	.Lnt16loop
.Lnttail:
	movdqu	%xmm7, -16(%r11)
	mov	%r10, %rax
	ret
	.size	poise_mc_memcpy_nt, .-poise_mc_memcpy_nt

/* Fault landing points: the handler has put the result in rax/rdx already,
 * and picks the AVX one when the CPU has AVX (an AVX path may have faulted). */
	.globl	poise_mc_fixup
	.hidden	poise_mc_fixup
poise_mc_fixup:
	ret
	.globl	poise_mc_fixup_avx
	.hidden	poise_mc_fixup_avx
poise_mc_fixup_avx:
	vzeroupper
	ret

	.globl	poise_mc_text_end
	.hidden	poise_mc_text_end
poise_mc_text_end:

	/* The AVX2 flag is loaded on every 65..1023-byte copy.  A load whose
	 * address matches an in-flight store in its low 12 bits waits for it
	 * (4K aliasing), and callers' buffers are often page-aligned: so the
	 * flag sits in the last cache line of a page of its own, where only
	 * stores to the end of a page can alias it. */
	.section .data.poise_mc,"aw"
	.balign	4096
	.skip	4032
	.globl	poise_mc_have_avx2
	.hidden	poise_mc_have_avx2
poise_mc_have_avx2:
	.byte	0
	.skip	63

	.section .note.GNU-stack,"",@progbits
