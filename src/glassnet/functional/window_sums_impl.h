/* One element type's window sums, included by window_sums.c (see compiled.h). */

/* OUT_BLOCK output channels x nv vectors of neighbouring positions, summed over the R window
 * entries: acc[b][v] = sum_r w[b, r] * in[off[r] + v * LANES + (0 .. LANES-1)]. The vectors'
 * count is a constant after inlining, so the accumulators stay in registers. */
INLINE void NAME(sum_tile)(const T *in, const long *off, const T *packed, long R,
                           T *const *outs, long pos, int nv)
{
    VEC acc[OUT_BLOCK][POS_VECS];
#pragma GCC unroll 16
    for (int b = 0; b < OUT_BLOCK; b++)
#pragma GCC unroll 4
        for (int v = 0; v < POS_VECS; v++) acc[b][v] = (VEC){0};
    for (long r = 0; r < R; r++) {
        const T *p = in + off[r];
        VEC x[POS_VECS];
#pragma GCC unroll 4
        for (int v = 0; v < POS_VECS; v++)
            if (v < nv) x[v] = LOAD(p + v * LANES);
#pragma GCC unroll 16
        for (int b = 0; b < OUT_BLOCK; b++) {
            T s = packed[r * OUT_BLOCK + b];
#pragma GCC unroll 4
            for (int v = 0; v < POS_VECS; v++)
                if (v < nv) acc[b][v] += s * x[v];
        }
    }
#pragma GCC unroll 16
    for (int b = 0; b < OUT_BLOCK; b++)
#pragma GCC unroll 4
        for (int v = 0; v < POS_VECS; v++)
            if (v < nv) STORE(outs[b] + pos + v * LANES, acc[b][v]);
}

/* A run of `count` neighbouring positions: whole tiles, single vectors, then one by one. */
INLINE void NAME(sum_run)(const T *in, const long *off, const T *packed, long R,
                          T *const *outs, long pos, long count)
{
    long t = 0;
    for (; t + POS_VECS * LANES <= count; t += POS_VECS * LANES)
        NAME(sum_tile)(in + t, off, packed, R, outs, pos + t, POS_VECS);
    for (; t + LANES <= count; t += LANES)
        NAME(sum_tile)(in + t, off, packed, R, outs, pos + t, 1);
    for (; t < count; t++)
        for (int b = 0; b < OUT_BLOCK; b++) {
            T s = 0;
            for (long r = 0; r < R; r++) s += packed[r * OUT_BLOCK + b] * in[off[r] + t];
            outs[b][pos + t] = s;
        }
}

MULTIVERSION
int NAME(gn_window_sums)(const T *in, const long *off, long R, const T *w, long C_out,
                         T *out, long H_out, long W_out, long N, long row_step, long col_step,
                         long out_ch_step, long out_row_step, long out_col_step, long i0,
                         long i1)
{
    long blocks = (C_out + OUT_BLOCK - 1) / OUT_BLOCK;
    /* one output row's positions are one run when both sides hold them together */
    int one_run = col_step == N && out_col_step == N;
    /* w[o, r] repacked as [block][r][b]: a tile's OUT_BLOCK weights for entry r together */
    T *packed = calloc((size_t)(blocks * R * OUT_BLOCK), sizeof *packed);
    long reach = one_run ? W_out * N : (W_out - 1) * out_col_step + N;  /* one row's writes */
    T *spare = malloc((size_t)reach * sizeof *spare);  /* the missing channels' output */
    if (!packed || !spare) {
        free(packed);
        free(spare);
        return -1;
    }
    for (long o = 0; o < C_out; o++)
        for (long r = 0; r < R; r++)
            packed[((o / OUT_BLOCK) * R + r) * OUT_BLOCK + o % OUT_BLOCK] = w[o * R + r];
    for (long i = i0; i < i1; i++) {
        const T *base = in + i * row_step;
        for (long blk = 0; blk < blocks; blk++) {
            T *outs[OUT_BLOCK];
            for (int b = 0; b < OUT_BLOCK; b++) {
                long o = blk * OUT_BLOCK + b;
                outs[b] = o < C_out ? out + o * out_ch_step + i * out_row_step : spare;
            }
            const T *wb = packed + blk * R * OUT_BLOCK;
            if (one_run)
                NAME(sum_run)(base, off, wb, R, outs, 0, W_out * N);
            else
                for (long j = 0; j < W_out; j++)
                    NAME(sum_run)(base + j * col_step, off, wb, R, outs, j * out_col_step, N);
        }
    }
    free(packed);
    free(spare);
    return 0;
}

/* acc[b][q] += dy[b] * x[q] over one output row's runs of positions, a vector at a time; acc
 * lives in memory between rows (`acc_mem`, ENTRY_BLOCK entries `stride` apart per channel). */
INLINE void NAME(product_tile)(const T *in, const long *off, const T *const *dys, long runs,
                               long col_step, long span, long whole, VEC *acc_mem, long stride)
{
    VEC acc[OUT_BLOCK][ENTRY_BLOCK];
#pragma GCC unroll 16
    for (int b = 0; b < OUT_BLOCK; b++)
#pragma GCC unroll 4
        for (int q = 0; q < ENTRY_BLOCK; q++) acc[b][q] = acc_mem[b * stride + q];
    for (long j = 0; j < runs; j++) {
        const T *run = in + j * col_step;
        for (long t = 0; t < whole; t += LANES) {
            VEC d[OUT_BLOCK], x[ENTRY_BLOCK];
#pragma GCC unroll 4
            for (int b = 0; b < OUT_BLOCK; b++) d[b] = LOAD(dys[b] + j * span + t);
#pragma GCC unroll 4
            for (int q = 0; q < ENTRY_BLOCK; q++) x[q] = LOAD(run + off[q] + t);
#pragma GCC unroll 16
            for (int b = 0; b < OUT_BLOCK; b++)
#pragma GCC unroll 4
                for (int q = 0; q < ENTRY_BLOCK; q++) acc[b][q] += d[b] * x[q];
        }
    }
#pragma GCC unroll 16
    for (int b = 0; b < OUT_BLOCK; b++)
#pragma GCC unroll 4
        for (int q = 0; q < ENTRY_BLOCK; q++) acc_mem[b * stride + q] = acc[b][q];
}

MULTIVERSION
int NAME(gn_window_products)(const T *in, const long *off, long R, const T *dy, long C_out,
                             T *dw, long H_out, long W_out, long N, long row_step,
                             long col_step, long o0, long o1)
{
    (void)C_out;
    long row = W_out * N, Rp = (R + ENTRY_BLOCK - 1) / ENTRY_BLOCK * ENTRY_BLOCK;
    long span = col_step == N ? row : N, runs = col_step == N ? 1 : W_out;
    long whole = span / LANES * LANES;  /* positions per run taken a vector at a time */
    long *offs = malloc((size_t)Rp * sizeof *offs);
    T *zeros = calloc((size_t)row, sizeof *zeros);  /* dy of the last block's missing channels */
    VEC *acc = NULL;
    if (posix_memalign((void **)&acc, sizeof(VEC), (size_t)(OUT_BLOCK * Rp) * sizeof *acc))
        acc = NULL;
    if (!offs || !zeros || !acc) {
        free(offs);
        free(zeros);
        free(acc);
        return -1;
    }
    memcpy(offs, off, (size_t)R * sizeof *offs);
    for (long r = R; r < Rp; r++) offs[r] = off[0];  /* padded entries: summed, then dropped */
    for (long ob = o0; ob < o1; ob += OUT_BLOCK) {
        long nb = o1 - ob < OUT_BLOCK ? o1 - ob : OUT_BLOCK;
        memset(acc, 0, (size_t)(OUT_BLOCK * Rp) * sizeof *acc);
        for (long b = 0; b < nb; b++)
            for (long r = 0; r < R; r++) dw[(ob + b) * R + r] = 0;
        for (long i = 0; i < H_out; i++) {
            const T *dys[OUT_BLOCK];
            for (int b = 0; b < OUT_BLOCK; b++)
                dys[b] = b < nb ? dy + ((ob + b) * H_out + i) * row : zeros;
            const T *in_row = in + i * row_step;
            for (long rb = 0; rb < Rp; rb += ENTRY_BLOCK)
                NAME(product_tile)(in_row, offs + rb, dys, runs, col_step, span, whole,
                                   acc + rb, Rp);
            for (long j = 0; j < runs; j++)  /* the positions past whole vectors */
                for (long t = whole; t < span; t++)
                    for (long b = 0; b < nb; b++)
                        for (long r = 0; r < R; r++)
                            dw[(ob + b) * R + r] +=
                                dys[b][j * span + t] * in_row[j * col_step + off[r] + t];
        }
        for (long b = 0; b < nb; b++)
            for (long r = 0; r < R; r++) {
                T s = 0;
                for (int l = 0; l < LANES; l++) s += acc[b * Rp + r][l];
                dw[(ob + b) * R + r] += s;
            }
    }
    free(offs);
    free(zeros);
    free(acc);
    return 0;
}
