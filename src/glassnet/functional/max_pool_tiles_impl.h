/* One element type's max pooling loop, included by max_pool_tiles.c once per type. */

MULTIVERSION
static int NAME(max_pool_tiles_backward)(const T *x, const T *out, const T *dy, T *dx, long H,
                                         long W, long N, long KH, long KW, long c0, long c1)
{
    long H_out = H / KH, W_out = W / KW, whole = N / LANES * LANES;
    for (long c = c0; c < c1; c++) {
        for (long i = 0; i < H_out; i++) {
            for (long j = 0; j < W_out; j++) {
                long at = ((c * H + i * KH) * W + j * KW) * N, to = ((c * H_out + i) * W_out + j) * N;
                for (long n = 0; n < whole; n += LANES) {
                    VEC best = LOAD(out + to + n), d = LOAD(dy + to + n);
                    IVEC taken = (IVEC){0};
                    for (long m = 0; m < KH; m++)
                        for (long k = 0; k < KW; k++) {
                            long p = at + (m * W + k) * N + n;
                            IVEC won = (IVEC)(LOAD(x + p) == best) & ~taken;
                            taken |= won;
                            STORE(dx + p, (VEC)((IVEC)d & won));
                        }
                }
                for (long n = whole; n < N; n++) {
                    int taken = 0;
                    for (long m = 0; m < KH; m++)
                        for (long k = 0; k < KW; k++) {
                            long p = at + (m * W + k) * N + n;
                            int won = !taken && x[p] == out[to + n];
                            taken |= won;
                            dx[p] = won ? dy[to + n] : (T)0;
                        }
                }
            }
            for (long y = i * KH; y < (i + 1) * KH; y++) /* columns past the last window */
                memset(dx + ((c * H + y) * W + W_out * KW) * N, 0,
                       (size_t)((W - W_out * KW) * N) * sizeof *dx);
        }
        for (long y = H_out * KH; y < H; y++) /* rows past the last window */
            memset(dx + (c * H + y) * W * N, 0, (size_t)(W * N) * sizeof *dx);
    }
    return 0;
}

/* The exported part (compiled.h): arguments in the order of the loop above. */
int NAME(gn_max_pool_tiles_backward)(const gn_slot *s, long c0, long c1)
{
    return NAME(max_pool_tiles_backward)(s[0].p, s[1].p, s[2].p, s[3].p, s[4].i, s[5].i, s[6].i,
                                         s[7].i, s[8].i, c0, c1);
}
