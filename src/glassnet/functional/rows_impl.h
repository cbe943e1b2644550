/* One element type's row loops, included by rows.c once per type (see each_type.h). */

/* sum of a row, and of (row - shift)^2 when `squares` */
INLINE T NAME(row_sum)(const T *x, long M, T shift, int squares)
{
    VEC acc = (VEC){0};
    long t = 0;
    for (; t + LANES <= M; t += LANES) {
        VEC v = LOAD(x + t) - shift;
        acc += squares ? v * v : v;
    }
    T s = 0;
    for (int l = 0; l < LANES; l++) s += acc[l];
    for (; t < M; t++) s += squares ? (x[t] - shift) * (x[t] - shift) : x[t] - shift;
    return s;
}

MULTIVERSION
static int NAME(bn_train_forward)(const T *x, long M, const T *gamma, const T *beta, T eps,
                               T *xhat, T *out, T *mean, T *var, T *inv_std, long c0, long c1)
{
    for (long c = c0; c < c1; c++) {
        const T *xc = x + c * M;
        T *hc = xhat + c * M, *oc = out + c * M;
        T mu = NAME(row_sum)(xc, M, 0, 0) / (T)M;
        T v = NAME(row_sum)(xc, M, mu, 1) / (T)M;
        T is = (T)1 / (T)sqrt(v + eps);
        T g = gamma ? gamma[c] : (T)1, b = beta ? beta[c] : (T)0;
        for (long t = 0; t < M; t++) {
            T h = (xc[t] - mu) * is;
            hc[t] = h;
            oc[t] = h * g + b;
        }
        mean[c] = mu;
        var[c] = v;
        inv_std[c] = is;
    }
    return 0;
}

MULTIVERSION
static int NAME(bn_backward)(const T *dy, const T *xhat, const T *x, const T *mean,
                          const T *inv_std, long M, const T *scale, int batch_stats, T *dx,
                          T *dweight, T *dbias, long c0, long c1)
{
    for (long c = c0; c < c1; c++) {
        const T *dc = dy + c * M;
        T *gc = dx + c * M;
        const T *hc = xhat ? xhat + c * M : gc;
        if (!xhat) { /* evaluation kept x: normalise it again, in dx for now */
            const T *xc = x + c * M;
            for (long t = 0; t < M; t++) gc[t] = (xc[t] - mean[c]) * inv_std[c];
        }
        VEC sd = (VEC){0}, sdh = (VEC){0};
        long t = 0;
        for (; t + LANES <= M; t += LANES) {
            VEC d = LOAD(dc + t);
            sd += d;
            sdh += d * LOAD(hc + t);
        }
        T db = 0, dg = 0;
        for (int l = 0; l < LANES; l++) {
            db += sd[l];
            dg += sdh[l];
        }
        for (; t < M; t++) {
            db += dc[t];
            dg += dc[t] * hc[t];
        }
        T s = scale[c], a = db / (T)M, b = dg / (T)M;
        if (batch_stats)
            for (t = 0; t < M; t++) gc[t] = s * (dc[t] - a - hc[t] * b);
        else
            for (t = 0; t < M; t++) gc[t] = s * dc[t];
        dbias[c] = db;
        dweight[c] = dg;
    }
    return 0;
}

MULTIVERSION
static int NAME(rows_affine)(const T *x, long M, const T *scale, const T *shift, T *out, long c0,
                          long c1)
{
    for (long c = c0; c < c1; c++)
        for (long t = 0; t < M; t++) out[c * M + t] = x[c * M + t] * scale[c] + shift[c];
    return 0;
}

MULTIVERSION
static int NAME(relu_forward)(const T *x, T *out, long n0, long n1)
{
    for (long t = n0; t < n1; t++) out[t] = x[t] <= 0 ? (T)0 : x[t];  /* NaN passes, as max */
    return 0;
}

MULTIVERSION
static int NAME(add)(const T *a, const T *b, T *out, long n0, long n1)
{
    for (long t = n0; t < n1; t++) out[t] = a[t] + b[t];
    return 0;
}

MULTIVERSION
static int NAME(relu_backward)(const T *dy, const T *y, T *dx, long n0, long n1)
{
    for (long t = n0; t < n1; t++) dx[t] = dy[t] * (T)(y[t] > 0);
    return 0;
}

/* The exported parts (compiled.h): arguments in the order of the loops above. */
int NAME(gn_bn_train_forward)(const gn_slot *s, long c0, long c1)
{
    return NAME(bn_train_forward)(s[0].p, s[1].i, s[2].p, s[3].p, (T)s[4].f, s[5].p, s[6].p,
                                  s[7].p, s[8].p, s[9].p, c0, c1);
}

int NAME(gn_bn_backward)(const gn_slot *s, long c0, long c1)
{
    return NAME(bn_backward)(s[0].p, s[1].p, s[2].p, s[3].p, s[4].p, s[5].i, s[6].p,
                             (int)s[7].i, s[8].p, s[9].p, s[10].p, c0, c1);
}

int NAME(gn_rows_affine)(const gn_slot *s, long c0, long c1)
{
    return NAME(rows_affine)(s[0].p, s[1].i, s[2].p, s[3].p, s[4].p, c0, c1);
}

int NAME(gn_relu_forward)(const gn_slot *s, long n0, long n1)
{
    return NAME(relu_forward)(s[0].p, s[1].p, n0, n1);
}

int NAME(gn_relu_backward)(const gn_slot *s, long n0, long n1)
{
    return NAME(relu_backward)(s[0].p, s[1].p, s[2].p, n0, n1);
}

int NAME(gn_add)(const gn_slot *s, long n0, long n1)
{
    return NAME(add)(s[0].p, s[1].p, s[2].p, n0, n1);
}
