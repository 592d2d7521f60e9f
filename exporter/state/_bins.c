/* A batch's numeric feature values binned and added into a window ring.
 *
 * Why C: numpy bins a (rows x features) matrix in ~17 passes (clip, NaN mask, lookup
 * cell, gathers, correction steps, offsets) and np.add.at scatters the cells; a model's
 * few hundred records of a step, spread over many buckets, cost ~300 us that way, which
 * made 100 models' lines 1.5-1.6x one model's (docs/scaling.md); here ~100 us.
 *
 * The bin is profiles.bin_matrix's, exactly: the lookup table's lower bound, then always
 * ``steps`` moves up one edge where the value has passed it (edges padded with +inf),
 * 0 below the table's low end; a column without a table (its ``exact`` length >= 0) is a
 * binary search, searchsorted(edges, v, "right"). +-inf are binned as +-largest floats;
 * their sums stay infinite. NaN is skipped. Sums are added as np.add.at adds them: each
 * value cast to float32, in row order; the since-start value sums per feature in float64,
 * summed from zero in row order and then added, as numpy's column sums are.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

static int get(PyObject *obj, Py_buffer *view, int writable, Py_ssize_t items,
               Py_ssize_t itemsize, const char *what) {
    int flags = PyBUF_C_CONTIGUOUS | (writable ? PyBUF_WRITABLE : 0);
    if (PyObject_GetBuffer(obj, view, flags) < 0) return -1;
    if (view->len < items * itemsize) {
        PyErr_Format(PyExc_ValueError, "%s: %zd bytes, needs %zd", what, view->len,
                     items * itemsize);
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

PyDoc_STRVAR(scatter_doc,
"scatter(values, low, inv_width, start, lut_cells, steps, padded, exact, width, offsets,\n"
"        counts, sums, total_counts, total_sums) -> None\n\n"
"values: float64 rows x F. low, inv_width: float64 F; start: int16 or int32 F x lut_cells;\n"
"padded: float64 F x P (edges, +inf after); exact: int64 F (-1: by the table, else the\n"
"column's number of edges, binary search). A value of row r, feature j, in bin b goes to\n"
"flat cell offsets[r] + j * width + b of counts (int32, +1) and sums (float32, +value),\n"
"and cell j * width + b of total_counts (int64); total_sums (float64 F) += the column\n"
"sums.");

static PyObject *scatter(PyObject *self, PyObject *args) {
    PyObject *o_values, *o_low, *o_inv, *o_start, *o_padded, *o_exact, *o_offsets, *o_counts,
        *o_sums, *o_total_counts, *o_total_sums;
    Py_ssize_t lut_cells, steps, width;
    if (!PyArg_ParseTuple(args, "OOOOnnOOnOOOOO", &o_values, &o_low, &o_inv, &o_start,
                          &lut_cells, &steps, &o_padded, &o_exact, &width, &o_offsets,
                          &o_counts, &o_sums, &o_total_counts, &o_total_sums))
        return NULL;
    Py_buffer v = {0}, low = {0}, inv = {0}, start = {0}, padded = {0}, exact = {0},
              offsets = {0}, counts = {0}, sums = {0}, tcounts = {0}, tsums = {0};
    Py_buffer *all[] = {&v, &low, &inv, &start, &padded, &exact,
                        &offsets, &counts, &sums, &tcounts, &tsums};
    PyObject *result = NULL;
    double *colsum = NULL;
    int64_t *target = NULL;
    int32_t *cells = NULL;

    if (get(o_low, &low, 0, 0, 8, "low") < 0) goto done;
    Py_ssize_t n_feat = low.len / 8;
    if (get(o_offsets, &offsets, 0, 0, 8, "offsets") < 0) goto done;
    Py_ssize_t rows = offsets.len / 8;
    if (lut_cells < 1 || steps < 0 || width < 1 || n_feat < 1) {
        PyErr_SetString(PyExc_ValueError, "bad table sizes");
        goto done;
    }
    if (get(o_values, &v, 0, rows * n_feat, 8, "values") < 0) goto done;
    if (get(o_inv, &inv, 0, n_feat, 8, "inv_width") < 0) goto done;
    /* int16 where the edges allow (half the cache lines of a cold table), else int32 */
    if (get(o_start, &start, 0, n_feat * lut_cells, 2, "start") < 0) goto done;
    int wide = start.itemsize == 4;
    if ((start.itemsize != 2 && !wide) || start.len < n_feat * lut_cells * start.itemsize) {
        PyErr_SetString(PyExc_ValueError, "start: int16 or int32, F x lut_cells");
        goto done;
    }
    if (get(o_padded, &padded, 0, n_feat, 8, "padded") < 0) goto done;
    Py_ssize_t pad = padded.len / 8 / n_feat; /* edges + 1 per column */
    if (get(o_exact, &exact, 0, n_feat, 8, "exact") < 0) goto done;
    if (get(o_counts, &counts, 1, 0, 4, "counts") < 0) goto done;
    if (get(o_sums, &sums, 1, counts.len / 4, 4, "sums") < 0) goto done;
    if (get(o_total_counts, &tcounts, 1, n_feat * width, 8, "total_counts") < 0) goto done;
    if (get(o_total_sums, &tsums, 1, n_feat, 8, "total_sums") < 0) goto done;

    const double *x = v.buf, *lo = low.buf, *iw = inv.buf, *pd = padded.buf;
    const int32_t *st32 = start.buf;
    const int16_t *st16 = start.buf;
    const int64_t *ex = exact.buf, *off = offsets.buf;
    int32_t *cnt = counts.buf; /* a bucket's counts are int32 (windows.py) */
    int64_t *tcnt = tcounts.buf;
    float *sm = sums.buf;
    double *tsm = tsums.buf;
    Py_ssize_t ring_cells = counts.len / 4, span = n_feat * width;
    /* Every index is checked before anything is written: a bad call changes nothing. */
    for (Py_ssize_t r = 0; r < rows; r++) {
        if (off[r] < 0 || off[r] > ring_cells - span) {
            PyErr_Format(PyExc_IndexError, "row %zd's offset %lld is outside the ring (%zd cells, %zd a row)", r, (long long)off[r], ring_cells, span);
            goto done;
        }
    }
    for (Py_ssize_t j = 0; j < n_feat; j++) {
        if (ex[j] >= pad || ex[j] >= width || pad > width) {
            PyErr_SetString(PyExc_ValueError, "edges wider than the bins");
            goto done;
        }
    }
    colsum = PyMem_Calloc((size_t)n_feat, sizeof(double));
    target = PyMem_Malloc((size_t)(rows * n_feat + 1) * sizeof(int64_t));
    cells = PyMem_Malloc((size_t)(rows * n_feat + 1) * sizeof(int32_t));
    if (colsum == NULL || target == NULL || cells == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    Py_BEGIN_ALLOW_THREADS
    /* Three passes, each over a model's values a feature at a time, because at 100
       models a model's tables and ring are out of the cache at its next step (measured
       in place, a model's 200 records of 50 features over 115 buckets): 1. each value's
       lookup cell, its table line fetched at once, so the misses overlap (151 -> ~45 us
       for this pass and the next, where the table read was waited for); 2. the bin
       (table, then steps along the feature's edges), the since-start counters, and the
       value's ring cell; 3. the ring's adds alone, each fetched ahead: the ring is MiBs
       and a loop that also binned kept too few misses in flight. Each ring cell still
       gets its values in row order, so its float32 sum is a row-by-row pass's. */
    for (Py_ssize_t j = 0; j < n_feat; j++) {
        const int32_t *table32 = st32 + j * lut_cells;
        const int16_t *table16 = st16 + j * lut_cells;
        double low_j = lo[j], inv_j = iw[j];
        int32_t *cj = cells + j * rows;
        for (Py_ssize_t r = 0; r < rows; r++) {
            double b = x[r * n_feat + j];
            b = b < -DBL_MAX ? -DBL_MAX : (b > DBL_MAX ? DBL_MAX : b); /* NaN stays */
            double c = (b - low_j) * inv_j;
            c = c > 0.0 ? c : 0.0; /* NaN (inf * 0, or the value's) to 0, as np.clip */
            if (c > (double)(lut_cells - 1)) c = (double)(lut_cells - 1);
            cj[r] = (int32_t)c;
            if (wide) __builtin_prefetch(&table32[cj[r]]);
            else __builtin_prefetch(&table16[cj[r]]);
        }
    }
    Py_ssize_t placed = 0;
    for (Py_ssize_t j = 0; j < n_feat; j++) {
        const double *edges = pd + j * pad;
        const int32_t *table32 = st32 + j * lut_cells;
        const int16_t *table16 = st16 + j * lut_cells;
        const int32_t *cj = cells + j * rows;
        double low_j = lo[j], sum = 0.0;
        int64_t exact_j = ex[j];
        Py_ssize_t column = j * width;
        for (Py_ssize_t r = 0; r < rows; r++) {
            double value = x[r * n_feat + j];
            if (isnan(value)) continue;
            double b = value < -DBL_MAX ? -DBL_MAX : (value > DBL_MAX ? DBL_MAX : value);
            Py_ssize_t k;
            if (exact_j >= 0) { /* searchsorted(edges, b, "right") */
                Py_ssize_t a = 0, z = exact_j;
                while (a < z) {
                    Py_ssize_t m = (a + z) / 2;
                    if (edges[m] <= b) a = m + 1;
                    else z = m;
                }
                k = a;
            } else {
                k = wide ? table32[cj[r]] : table16[cj[r]];
                /* Within the edges whatever the table holds (memory, not results: the
                   table is built within them). */
                if (k < 0 || k >= pad) k = pad - 1;
                for (Py_ssize_t s = 0; s < steps; s++) {
                    if (k < pad - 1) k += b >= edges[k];
                }
                if (b < low_j) k = 0;
            }
            tcnt[column + k] += 1;
            sum += value;
            target[placed++] = off[r] + column + k;
        }
        colsum[j] = sum;
    }
    enum { AHEAD = 48 };
    Py_ssize_t i = 0;
    for (Py_ssize_t j = 0; j < n_feat; j++) {
        for (Py_ssize_t r = 0; r < rows; r++) {
            double value = x[r * n_feat + j];
            if (isnan(value)) continue;
            if (i + AHEAD < placed) {
                __builtin_prefetch(&cnt[target[i + AHEAD]], 1);
                __builtin_prefetch(&sm[target[i + AHEAD]], 1);
            }
            cnt[target[i]] += 1;
            sm[target[i]] += (float)value;
            i++;
        }
    }
    Py_END_ALLOW_THREADS
    for (Py_ssize_t j = 0; j < n_feat; j++) tsm[j] += colsum[j];
    result = Py_None;
    Py_INCREF(result);

done:
    for (int i = 0; i < 11; i++)
        if (all[i]->obj != NULL) PyBuffer_Release(all[i]);
    PyMem_Free(colsum);
    PyMem_Free(target);
    PyMem_Free(cells);
    return result;
}

static PyMethodDef methods[] = {
    {"scatter", scatter, METH_VARARGS, scatter_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_bins", "Numeric values binned into window rings.", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__bins(void) { return PyModule_Create(&module); }
