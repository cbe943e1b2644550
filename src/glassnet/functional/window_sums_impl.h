/* One element type's window sums, included by window_sums.c once per type (see each_type.h). */

/* What a convolution's sums may pass through before they are stored (all optional, per output
 * channel o): y = sum + bias[o], then y * scale[o] + shift[o] (an evaluation BatchNorm), then
 * y + residual (a residual sum: `residual` is an array shaped as the output, whose first
 * number is `out`'s), then max(y, 0) (ReLU). The same expressions as rows_impl.h's loops, so
 * the numbers equal the separate steps'. */
struct NAME(finish) {
    const T *bias, *scale, *shift, *residual;
    const T *out;
    long channels; /* C_out: the tile's channels past it write to a spare row, left as is */
    int relu;
};

/* y, channel o's sum, through `f`; r: the residual's number at y's place (if any). */
INLINE T NAME(finish_one)(T y, const struct NAME(finish) *f, long o, const T *r)
{
    if (f->bias) y = y + f->bias[o];
    if (f->scale) y = y * f->scale[o] + f->shift[o];
    if (r) y = y + *r;
    if (f->relu) y = y <= 0 ? (T)0 : y; /* NaN passes, as in relu_forward */
    return y;
}

/* the same for channel o's nv vectors of sums acc, then stored from p on; the steps' tests
 * outside the vector loops, the sums in registers throughout */
INLINE void NAME(finish_store)(T *p, VEC *acc, int nv, const struct NAME(finish) *f, long o)
{
    if (f->bias) {
        T b = f->bias[o];
#pragma GCC unroll 8
        for (int v = 0; v < POS_VECS; v++)
            if (v < nv) acc[v] = acc[v] + b;
    }
    if (f->scale) {
        T s = f->scale[o], t = f->shift[o];
#pragma GCC unroll 8
        for (int v = 0; v < POS_VECS; v++)
            if (v < nv) acc[v] = acc[v] * s + t;
    }
    if (f->residual) {
        const T *r = f->residual + (p - f->out);
#pragma GCC unroll 8
        for (int v = 0; v < POS_VECS; v++)
            if (v < nv) acc[v] = acc[v] + LOAD(r + v * LANES);
    }
    if (f->relu)
#pragma GCC unroll 8
        for (int v = 0; v < POS_VECS; v++) /* y <= 0 ? 0 : y lane by lane: NaN passes */
            if (v < nv) acc[v] = (VEC)((IVEC)acc[v] & ~(IVEC)(acc[v] <= (VEC){0}));
#pragma GCC unroll 8
    for (int v = 0; v < POS_VECS; v++)
        if (v < nv) STORE(p + v * LANES, acc[v]);
}

/* SUM_BLOCK output channels x nv vectors of neighbouring positions, summed over R window
 * entries: acc[b][v] (+)= sum_r w[b, r] * src[r][at + v * LANES + (0 .. LANES-1)], added to
 * what outs holds when `add`, and passed through `fin` (if given; channels o0 ..) on the way
 * to memory. The vectors' count is a constant after inlining, so the accumulators stay in
 * registers. */
INLINE void NAME(sum_tile)(const T *const *src, long at, const T *packed, long R,
                           T *const *outs, long pos, int nv, int add,
                           const struct NAME(finish) *fin, long o0)
{
    VEC acc[SUM_BLOCK][POS_VECS];
#pragma GCC unroll 16
    for (int b = 0; b < SUM_BLOCK; b++)
#pragma GCC unroll 8
        for (int v = 0; v < POS_VECS; v++)
            if (v < nv) acc[b][v] = add ? LOAD(outs[b] + pos + v * LANES) : (VEC){0};
    for (long r = 0; r < R; r++) {
        const T *p = src[r] + at;
        VEC x[POS_VECS];
#pragma GCC unroll 8
        for (int v = 0; v < POS_VECS; v++)
            if (v < nv) x[v] = LOAD(p + v * LANES);
#pragma GCC unroll 16
        for (int b = 0; b < SUM_BLOCK; b++) {
            T s = packed[r * SUM_BLOCK + b];
#pragma GCC unroll 8
            for (int v = 0; v < POS_VECS; v++)
                if (v < nv) acc[b][v] += s * x[v];
        }
    }
    if (fin) {
#pragma GCC unroll 16
        for (int b = 0; b < SUM_BLOCK; b++)
            if (o0 + b < fin->channels) NAME(finish_store)(outs[b] + pos, acc[b], nv, fin, o0 + b);
        return;
    }
#pragma GCC unroll 16
    for (int b = 0; b < SUM_BLOCK; b++)
#pragma GCC unroll 8
        for (int v = 0; v < POS_VECS; v++)
            if (v < nv) STORE(outs[b] + pos + v * LANES, acc[b][v]);
}

/* nv vectors of positions for every output channel: the entries ENTRY_CHUNK at a time, each
 * chunk's inputs (a few KB) summed into every block of channels while they are in the L1
 * cache, the partial sums kept in the output between chunks. */
INLINE void NAME(sum_tiles)(const T *const *src, long at, const T *packed, long R, long blocks,
                            T *const *outs, long pos, int nv, const struct NAME(finish) *fin)
{
    for (long r0 = 0; r0 < R; r0 += ENTRY_CHUNK) {
        long count = R - r0 < ENTRY_CHUNK ? R - r0 : ENTRY_CHUNK;
        const struct NAME(finish) *last = r0 + count == R ? fin : NULL;
        for (long blk = 0; blk < blocks; blk++)
            NAME(sum_tile)(src + r0, at, packed + (blk * R + r0) * SUM_BLOCK, count,
                           outs + blk * SUM_BLOCK, pos, nv, r0 > 0, last, blk * SUM_BLOCK);
    }
}

/* `count` neighbouring positions from `at` on in every src[r], into outs[o] from `pos` on, for
 * every channel o: whole tiles, single vectors, then one by one; each through `fin`. */
INLINE void NAME(sum_run)(const T *const *src, long at, const T *packed, long R, long blocks,
                          T *const *outs, long pos, long count, const struct NAME(finish) *fin)
{
    long t = 0;
    for (; t + POS_VECS * LANES <= count; t += POS_VECS * LANES)
        NAME(sum_tiles)(src, at + t, packed, R, blocks, outs, pos + t, POS_VECS, fin);
    for (; t + LANES <= count; t += LANES)
        NAME(sum_tiles)(src, at + t, packed, R, blocks, outs, pos + t, 1, fin);
    for (; t < count; t++)
        for (long o = 0; o < blocks * SUM_BLOCK; o++) {
            const T *wo = packed + (o / SUM_BLOCK) * R * SUM_BLOCK + o % SUM_BLOCK;
            T s = 0;
            for (long r = 0; r < R; r++) s += wo[r * SUM_BLOCK] * src[r][at + t];
            T *p = outs[o] + pos + t;
            if (fin && o < fin->channels)
                s = NAME(finish_one)(s, fin, o, fin->residual ? fin->residual + (p - fin->out) : NULL);
            *p = s;
        }
}

/* out[o, i, j, n] = sum_r w[o, r] * x[c_r, i*S_h + dr_r, j*S_w + dc_r, n], with x (C, H, W, N)
 * read as 0 outside H x W: the padding, taken as zeros without being copied. chan[r] is entry
 * r's channel offset c_r*H*W*N. Output rows i0 .. i1-1; out addressed by its steps. bias,
 * scale, shift (C_out each, or NULL), residual (out's shape and steps, or NULL) and relu: what
 * each sum passes through (struct finish). */
MULTIVERSION
static int NAME(window_sums)(const T *x, long H, long W, long N, const long *chan,
                             const long *dr, const long *dc, long R, long S_h, long S_w,
                             const T *w, long C_out, T *out, long H_out, long W_out,
                             long out_ch_step, long out_row_step, long out_col_step,
                             const T *bias, const T *scale, const T *shift, const T *residual,
                             int relu, long i0, long i1)
{
    long blocks = (C_out + SUM_BLOCK - 1) / SUM_BLOCK;
    /* the columns j whose every entry lies inside the width: [j0, j1) */
    long j0 = 0, j1 = W_out;
    for (long r = 0; r < R; r++) {
        long lo = dc[r] < 0 ? (-dc[r] + S_w - 1) / S_w : 0;
        long hi = W - dc[r] > 0 ? (W - dc[r] + S_w - 1) / S_w : 0;
        if (lo > j0) j0 = lo;
        if (hi < j1) j1 = hi;
    }
    if (j1 < j0) j1 = j0;
    /* the inner columns' positions are one run when both sides hold them together */
    int one_run = S_w == 1 && out_col_step == N;
    long width = (W_out * S_w + W) * N + LANES;  /* what a zero row must cover */
    T *packed = calloc((size_t)(blocks * R * SUM_BLOCK), sizeof *packed);
    T *spare = malloc((size_t)((W_out - 1) * out_col_step + N) * sizeof *spare);
    T *zeros = calloc((size_t)width, sizeof *zeros);  /* entries that fall in the padding */
    const T **rows = malloc((size_t)R * 2 * sizeof *rows), **cols = rows + R;
    T **outs = malloc((size_t)(blocks * SUM_BLOCK) * sizeof *outs);
    if (!packed || !spare || !zeros || !rows || !outs) {
        free(packed);
        free(spare);
        free(zeros);
        free(rows);
        free(outs);
        return -1;
    }
    struct NAME(finish) finish = {bias, scale, shift, residual, out, C_out, relu};
    const struct NAME(finish) *fin = bias || scale || residual || relu ? &finish : NULL;
    /* w[o, r] repacked as [block][r][b]: a tile's SUM_BLOCK weights for entry r together */
    for (long o = 0; o < C_out; o++)
        for (long r = 0; r < R; r++)
            packed[((o / SUM_BLOCK) * R + r) * SUM_BLOCK + o % SUM_BLOCK] = w[o * R + r];
    for (long i = i0; i < i1; i++) {
        /* entry r of column j, position n, is rows[r][j*S_w*N + n]: its input row, shifted
         * by its column offset, or zeros where the row is in the padding */
        for (long r = 0; r < R; r++) {
            long row = i * S_h + dr[r];
            rows[r] = row >= 0 && row < H ? x + chan[r] + (row * W + dc[r]) * N : zeros;
        }
        for (long o = 0; o < blocks * SUM_BLOCK; o++) /* the missing channels write to spare */
            outs[o] = o < C_out ? out + o * out_ch_step + i * out_row_step : spare;
        if (one_run)
            NAME(sum_run)(rows, j0 * N, packed, R, blocks, outs, j0 * N, (j1 - j0) * N, fin);
        else
            for (long j = j0; j < j1; j++)
                NAME(sum_run)(rows, j * S_w * N, packed, R, blocks, outs, j * out_col_step, N,
                              fin);
        for (long j = 0; j < W_out; j++) { /* the border columns, entry by entry */
            if (j == j0) j = j1;
            if (j >= W_out) break;
            for (long r = 0; r < R; r++) {
                long col = j * S_w + dc[r];
                cols[r] = rows[r] != zeros && col >= 0 && col < W ? rows[r] + j * S_w * N : zeros;
            }
            NAME(sum_run)(cols, 0, packed, R, blocks, outs, j * out_col_step, N, fin);
        }
    }
    free(packed);
    free(spare);
    free(zeros);
    free(rows);
    free(outs);
    return 0;
}

/* acc[b][q] += dy[b] * x[q] over pieces of neighbouring positions, a vector at a time; acc
 * lives in memory between calls (`acc_mem`, ENTRY_BLOCK entries `stride` apart per channel).
 * Piece p starts at in_at[p] in the input and dy_at[p] in dy, and is len[p] long (a multiple
 * of LANES). With `sum_mem` (one VEC per channel) the dy vectors are also summed there: the
 * bias's gradient, taken while dy is in registers (a constant NULL compiles it away). */
INLINE void NAME(product_tile)(const T *in, const long *off, const T *const *dys,
                               const long *in_at, const long *dy_at, const long *len,
                               long pieces, VEC *acc_mem, long stride, VEC *sum_mem)
{
    VEC acc[PRODUCT_BLOCK][ENTRY_BLOCK], sums[PRODUCT_BLOCK];
#pragma GCC unroll 16
    for (int b = 0; b < PRODUCT_BLOCK; b++) {
        if (sum_mem) sums[b] = sum_mem[b];
#pragma GCC unroll 8
        for (int q = 0; q < ENTRY_BLOCK; q++) acc[b][q] = acc_mem[b * stride + q];
    }
    for (long p = 0; p < pieces; p++) {
        const T *run = in + in_at[p];
        long at = dy_at[p];
        for (long t = 0; t < len[p]; t += LANES) {
            VEC d[PRODUCT_BLOCK], x[ENTRY_BLOCK];
#pragma GCC unroll 8
            for (int b = 0; b < PRODUCT_BLOCK; b++) d[b] = LOAD(dys[b] + at + t);
#pragma GCC unroll 8
            for (int q = 0; q < ENTRY_BLOCK; q++) x[q] = LOAD(run + off[q] + t);
#pragma GCC unroll 16
            for (int b = 0; b < PRODUCT_BLOCK; b++) {
                if (sum_mem) sums[b] += d[b];
#pragma GCC unroll 8
                for (int q = 0; q < ENTRY_BLOCK; q++) acc[b][q] += d[b] * x[q];
            }
        }
    }
#pragma GCC unroll 16
    for (int b = 0; b < PRODUCT_BLOCK; b++) {
        if (sum_mem) sum_mem[b] = sums[b];
#pragma GCC unroll 8
        for (int q = 0; q < ENTRY_BLOCK; q++) acc_mem[b * stride + q] = acc[b][q];
    }
}

/* dw[o, r] = sum_{i, j, n} dy[o, i, j, n] * in[i*row_step + j*col_step + off[r] + n] and
 * db[o] = sum_{i, j, n} dy[o, i, j, n], for the output channels o0 .. o1-1 */
MULTIVERSION
static int NAME(window_products)(const T *in, const long *off, long R, const T *dy, long C_out,
                             T *dw, long H_out, long W_out, long N, long row_step,
                             long col_step, T *db, long o0, long o1)
{
    (void)C_out;
    long row = W_out * N, Rp = (R + ENTRY_BLOCK - 1) / ENTRY_BLOCK * ENTRY_BLOCK;
    long channels = o1 - o0, blocks = (channels + PRODUCT_BLOCK - 1) / PRODUCT_BLOCK;
    /* a row's positions in pieces of whole vectors: one run cut into pieces of up to CHUNK
     * positions, or each column's run of N; the positions past the last whole vector of a run
     * are taken one by one. A group of pieces of about CHUNK positions is summed into every
     * (channel block, entry block) while it is in the cache. */
    int one_run = col_step == N;
    long span = one_run ? row : N, whole = span / LANES * LANES;  /* per run */
    long runs = one_run ? 1 : W_out;
    long cuts = one_run ? (whole + CHUNK - 1) / CHUNK : (whole ? W_out : 0);  /* pieces */
    long group = one_run || whole == 0 ? 1 : (CHUNK / whole > 1 ? CHUNK / whole : 1);
    long *offs = malloc((size_t)Rp * sizeof *offs);
    long *in_at = malloc((size_t)(cuts + 1) * 3 * sizeof *in_at), *dy_at = in_at + cuts + 1;
    long *len = dy_at + cuts + 1;
    T *zeros = calloc((size_t)row, sizeof *zeros);  /* dy of the last block's missing channels */
    VEC *acc = NULL; /* then the dy sums: one VEC per channel of the blocks */
    size_t acc_size = (size_t)(blocks * PRODUCT_BLOCK * (Rp + 1)) * sizeof *acc;
    if (posix_memalign((void **)&acc, sizeof(VEC), acc_size)) acc = NULL;
    if (!offs || !in_at || !zeros || !acc) {
        free(offs);
        free(in_at);
        free(zeros);
        free(acc);
        return -1;
    }
    memcpy(offs, off, (size_t)R * sizeof *offs);
    for (long r = R; r < Rp; r++) offs[r] = off[0];  /* padded entries: summed, then dropped */
    for (long p = 0; p < cuts; p++) {
        in_at[p] = one_run ? p * CHUNK : p * col_step;
        dy_at[p] = one_run ? p * CHUNK : p * N;
        len[p] = one_run ? (whole - p * CHUNK < CHUNK ? whole - p * CHUNK : CHUNK) : whole;
    }
    memset(acc, 0, acc_size);
    VEC *sums = acc + blocks * PRODUCT_BLOCK * Rp;
    for (long o = o0; o < o1; o++) {
        db[o] = 0;
        for (long r = 0; r < R; r++) dw[o * R + r] = 0;
    }
    for (long i = 0; i < H_out; i++) {
        const T *in_row = in + i * row_step;
        for (long p0 = 0; p0 < cuts; p0 += group) {
            long count = cuts - p0 < group ? cuts - p0 : group;
            for (long blk = 0; blk < blocks; blk++) {
                long ob = o0 + blk * PRODUCT_BLOCK;
                const T *dys[PRODUCT_BLOCK];
                for (int b = 0; b < PRODUCT_BLOCK; b++)
                    dys[b] = ob + b < o1 ? dy + ((ob + b) * H_out + i) * row : zeros;
                VEC *acc_blk = acc + blk * PRODUCT_BLOCK * Rp;
                /* the first entry block also sums dy (the bias's gradient) */
                NAME(product_tile)(in_row, offs, dys, in_at + p0, dy_at + p0, len + p0, count,
                                   acc_blk, Rp, sums + blk * PRODUCT_BLOCK);
                for (long rb = ENTRY_BLOCK; rb < Rp; rb += ENTRY_BLOCK)
                    NAME(product_tile)(in_row, offs + rb, dys, in_at + p0, dy_at + p0, len + p0,
                                       count, acc_blk + rb, Rp, NULL);
            }
        }
        /* the positions past each run's last whole vector, one by one */
        for (long o = o0; o < o1; o++) {
            const T *dy_row = dy + (o * H_out + i) * row;
            for (long j = 0; j < runs; j++)
                for (long t = whole; t < span; t++) {
                    db[o] += dy_row[j * span + t];
                    for (long r = 0; r < R; r++)
                        dw[o * R + r] += dy_row[j * span + t] * in_row[j * col_step + off[r] + t];
                }
        }
    }
    for (long o = o0; o < o1; o++) {
        for (long r = 0; r < R; r++) {
            const VEC *a = acc + ((o - o0) / PRODUCT_BLOCK * PRODUCT_BLOCK * Rp
                                  + (o - o0) % PRODUCT_BLOCK * Rp + r);
            T s = 0;
            for (int l = 0; l < LANES; l++) s += (*a)[l];
            dw[o * R + r] += s;
        }
        T s = 0;
        for (int l = 0; l < LANES; l++) s += sums[o - o0][l];
        db[o] += s;
    }
    free(offs);
    free(in_at);
    free(zeros);
    free(acc);
    return 0;
}

/* The exported parts (compiled.h): arguments in the order of the loops above. */
int NAME(gn_window_sums)(const gn_slot *s, long i0, long i1)
{
    return NAME(window_sums)(s[0].p, s[1].i, s[2].i, s[3].i, s[4].p, s[5].p, s[6].p, s[7].i,
                             s[8].i, s[9].i, s[10].p, s[11].i, s[12].p, s[13].i, s[14].i,
                             s[15].i, s[16].i, s[17].i, s[18].p, s[19].p, s[20].p, s[21].p,
                             (int)s[22].i, i0, i1);
}

int NAME(gn_window_products)(const gn_slot *s, long o0, long o1)
{
    return NAME(window_products)(s[0].p, s[1].p, s[2].i, s[3].p, s[4].i, s[5].p, s[6].i,
                                 s[7].i, s[8].i, s[9].i, s[10].i, s[11].p, o0, o1);
}
