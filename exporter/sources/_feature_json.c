/* Feature objects (JSON, as msgspec.Raw or bytes) -> columns, without Python objects.
 *
 * Why C: a serving line's features cost ~2 us of a ~3.9 us line when msgspec builds a
 * float or str object for each value and numpy/Arrow read them back (docs/scaling.md).
 * Here each object is read once, numbers straight into a float64 matrix and strings into
 * Arrow buffers (offsets, data, validity).
 *
 * Contract: every item is one JSON value that msgspec has already decoded (skipped) as
 * valid JSON: valid UTF-8, numbers in range, no lone surrogates. This reader trusts that
 * for its results, never for memory: any bytes are read within bounds. A value this reader
 * does not take as the typed decoder would (a string for a numeric feature, a duplicate
 * key, an escaped key, anything not an object or null) makes its row a *fallback*: the
 * row is left empty and returned, and the caller reads it the lenient way.
 *
 * Numbers are read as msgspec reads them into a float field: correctly rounded (exact
 * fast path for up to 15 significant digits and |exponent| <= 22, else Python's own
 * correctly rounded conversion); an integer is converted as an integer (-0 is 0.0).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

typedef struct {
    const char *name;
    Py_ssize_t len;
    int code; /* index into the names; -1: empty slot */
} Slot;

typedef struct {
    Slot *slots;
    size_t mask;
    const char **names;
    Py_ssize_t *lens;
    int count;
} Table;

typedef struct {
    char *data;
    Py_ssize_t len, cap;
} Growable;

static uint64_t hash_bytes(const char *s, Py_ssize_t n) {
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (Py_ssize_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ULL;
    }
    return h;
}

static int table_lookup(const Table *t, const char *key, Py_ssize_t len, int expect) {
    /* Lines usually list their keys in the same order: the one after the last is tried
       first, a hash probe otherwise. */
    if (expect >= 0 && expect < t->count && t->lens[expect] == len &&
        memcmp(t->names[expect], key, (size_t)len) == 0)
        return expect;
    size_t i = (size_t)hash_bytes(key, len) & t->mask;
    for (;;) {
        const Slot *s = &t->slots[i];
        if (s->code < 0) return -1;
        if (s->len == len && memcmp(s->name, key, (size_t)len) == 0) return s->code;
        i = (i + 1) & t->mask;
    }
}

static int growable_reserve(Growable *g, Py_ssize_t extra) {
    if (g->len + extra <= g->cap) return 0;
    Py_ssize_t cap = g->cap ? g->cap : 256;
    while (cap < g->len + extra) {
        if (cap > PY_SSIZE_T_MAX / 2) return -1;
        cap *= 2;
    }
    char *data = PyMem_RawRealloc(g->data, (size_t)cap);
    if (data == NULL) return -1;
    g->data = data;
    g->cap = cap;
    return 0;
}

static const char *skip_ws(const char *p, const char *end) {
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) p++;
    return p;
}

/* p at the opening quote; the position after the closing quote, or NULL. */
static const char *skip_string(const char *p, const char *end) {
    p++;
    while (p < end) {
        char c = *p;
        if (c == '"') return p + 1;
        if (c == '\\' && end - p < 2) return NULL;
        p += (c == '\\') ? 2 : 1;
    }
    return NULL;
}

/* Past one value of any kind (valid JSON assumed; bounded on any input): the position of
   the ',' or '}' or ']' after a scalar, or after a container's closing bracket. */
static const char *skip_value(const char *p, const char *end) {
    int depth = 0;
    while (p < end) {
        char c = *p;
        if (c == '"') {
            p = skip_string(p, end);
            if (p == NULL) return NULL;
            if (depth == 0) return p;
        } else if (c == '{' || c == '[') {
            depth++;
            p++;
        } else if (c == '}' || c == ']') {
            if (depth == 0) return p;
            depth--;
            p++;
            if (depth == 0) return p;
        } else if (c == ',' && depth == 0) {
            return p;
        } else {
            p++;
        }
    }
    return depth == 0 ? p : NULL;
}

static const double POW10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                               1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                               1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* A JSON number at p into *out; the position after it, or NULL (not a number this reader
   takes: the row falls back). */
static const char *read_number(const char *p, const char *end, double *out) {
    const char *start = p;
    int negative = 0;
    if (p < end && *p == '-') {
        negative = 1;
        p++;
    }
    uint64_t mantissa = 0;
    int significant = 0, exponent = 0, inexact = 0, integer = 1, digits = 0;
    while (p < end && *p >= '0' && *p <= '9') {
        int d = *p - '0';
        if (significant < 19) {
            mantissa = mantissa * 10 + (uint64_t)d;
            if (mantissa) significant++;
        } else {
            exponent++;
            if (d) inexact = 1;
        }
        digits++;
        p++;
    }
    if (digits == 0) return NULL;
    if (p < end && *p == '.') {
        integer = 0;
        p++;
        const char *frac = p;
        while (p < end && *p >= '0' && *p <= '9') {
            int d = *p - '0';
            if (significant < 19) {
                mantissa = mantissa * 10 + (uint64_t)d;
                if (mantissa) significant++;
                exponent--;
            } else if (d) {
                inexact = 1;
            }
            p++;
        }
        if (p == frac) return NULL;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        integer = 0;
        p++;
        int sign = 1, e = 0;
        if (p < end && (*p == '+' || *p == '-')) {
            if (*p == '-') sign = -1;
            p++;
        }
        const char *exp_digits = p;
        while (p < end && *p >= '0' && *p <= '9') {
            if (e < 100000) e = e * 10 + (*p - '0');
            p++;
        }
        if (p == exp_digits) return NULL;
        exponent += sign * e;
    }
    double value;
    if (!inexact && mantissa <= (1ULL << 53) && exponent >= -22 && exponent <= 22) {
        /* Both operands exact: one IEEE operation rounds correctly (Clinger). */
        value = (double)mantissa;
        value = exponent >= 0 ? value * POW10[exponent] : value / POW10[-exponent];
    } else if (integer && !inexact && exponent == 0) {
        value = (double)mantissa; /* a uint64 to double: rounded to nearest */
    } else {
        char text[128];
        Py_ssize_t n = p - start;
        if (n >= (Py_ssize_t)sizeof(text)) return NULL;
        memcpy(text, start, (size_t)n);
        text[n] = '\0';
        /* Python's own correctly rounded conversion; it may raise, so with the GIL. */
        PyGILState_STATE gil = PyGILState_Ensure();
        value = PyOS_string_to_double(text, NULL, NULL);
        int failed = PyErr_Occurred() != NULL;
        if (failed) PyErr_Clear();
        PyGILState_Release(gil);
        if (failed || !isfinite(value)) return NULL;
        *out = value;
        return p;
    }
    if (negative && !(integer && mantissa == 0)) value = -value;
    *out = value;
    return p;
}

static int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static int read_u16(const char *p, const char *end) {
    if (end - p < 4) return -1;
    int v = 0;
    for (int i = 0; i < 4; i++) {
        int d = hex_digit(p[i]);
        if (d < 0) return -1;
        v = v * 16 + d;
    }
    return v;
}

/* A JSON string at p (the opening quote), its text appended to g; the position after the
   closing quote, or NULL (the row falls back; g may hold part of it). */
static const char *read_string(const char *p, const char *end, Growable *g) {
    p++;
    for (;;) {
        const char *run = p;
        while (p < end && *p != '"' && *p != '\\' && (unsigned char)*p >= 0x20) p++;
        if (p > run) {
            if (growable_reserve(g, p - run) < 0) return NULL;
            memcpy(g->data + g->len, run, (size_t)(p - run));
            g->len += p - run;
        }
        if (p >= end || (unsigned char)*p < 0x20) return NULL;
        if (*p == '"') return p + 1;
        /* an escape */
        if (end - p < 2) return NULL;
        char e = p[1];
        char one = 0;
        switch (e) {
            case '"': one = '"'; break;
            case '\\': one = '\\'; break;
            case '/': one = '/'; break;
            case 'b': one = '\b'; break;
            case 'f': one = '\f'; break;
            case 'n': one = '\n'; break;
            case 'r': one = '\r'; break;
            case 't': one = '\t'; break;
            case 'u': break;
            default: return NULL;
        }
        if (e != 'u') {
            if (growable_reserve(g, 1) < 0) return NULL;
            g->data[g->len++] = one;
            p += 2;
            continue;
        }
        int unit = read_u16(p + 2, end);
        if (unit < 0) return NULL;
        p += 6;
        uint32_t cp = (uint32_t)unit;
        if (cp >= 0xD800 && cp <= 0xDBFF) {
            if (end - p < 6 || p[0] != '\\' || p[1] != 'u') return NULL;
            int low = read_u16(p + 2, end);
            if (low < 0xDC00 || low > 0xDFFF) return NULL;
            cp = 0x10000 + ((cp - 0xD800) << 10) + ((uint32_t)low - 0xDC00);
            p += 6;
        } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
            return NULL;
        }
        if (growable_reserve(g, 4) < 0) return NULL;
        char *o = g->data + g->len;
        if (cp < 0x80) {
            o[0] = (char)cp;
            g->len += 1;
        } else if (cp < 0x800) {
            o[0] = (char)(0xC0 | (cp >> 6));
            o[1] = (char)(0x80 | (cp & 0x3F));
            g->len += 2;
        } else if (cp < 0x10000) {
            o[0] = (char)(0xE0 | (cp >> 12));
            o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
            o[2] = (char)(0x80 | (cp & 0x3F));
            g->len += 3;
        } else {
            o[0] = (char)(0xF0 | (cp >> 18));
            o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
            o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
            o[3] = (char)(0x80 | (cp & 0x3F));
            g->len += 4;
        }
    }
}

typedef struct {
    const Table *table;
    int n_numeric, n_categorical;
    double *numeric;          /* rows x n_numeric */
    int32_t *offsets;         /* n_categorical x (rows + 1) */
    uint8_t *validity;        /* n_categorical x bitmap_bytes */
    Py_ssize_t rows, bitmap_bytes;
    Growable *columns;        /* n_categorical */
    uint32_t *seen;           /* per name: the row stamp that last set it */
} Output;

/* One feature object into row r: 0, or 1 when the row falls back. */
static int read_object(const char *p, const char *end, Output *o, Py_ssize_t r) {
    const Table *t = o->table;
    double *row = o->numeric + r * o->n_numeric;
    uint32_t stamp = (uint32_t)r + 1;
    p = skip_ws(p, end);
    if (p >= end) return 1;
    if (*p == 'n') return (end - p >= 4 && memcmp(p, "null", 4) == 0) ? 0 : 1;
    if (*p != '{') return 1;
    p = skip_ws(p + 1, end);
    if (p < end && *p == '}') return 0;
    int expect = 0;
    for (;;) {
        if (p >= end || *p != '"') return 1;
        const char *key = p + 1;
        const char *q = key;
        while (q < end && *q != '"' && *q != '\\') q++;
        if (q >= end || *q == '\\') return 1; /* an escaped key: read the lenient way */
        int code = table_lookup(t, key, q - key, expect);
        p = skip_ws(q + 1, end);
        if (p >= end || *p != ':') return 1;
        p = skip_ws(p + 1, end);
        if (p >= end) return 1;
        if (code < 0) {
            p = skip_value(p, end);
            if (p == NULL) return 1;
        } else {
            if (o->seen[code] == stamp) return 1; /* a duplicate key: the last one wins */
            o->seen[code] = stamp;
            expect = code + 1;
            int is_null = *p == 'n';
            if (is_null) {
                if (end - p < 4 || memcmp(p, "null", 4) != 0) return 1;
                p += 4;
            } else if (code < o->n_numeric) {
                if (*p != '-' && (*p < '0' || *p > '9')) return 1;
                p = read_number(p, end, &row[code]);
                if (p == NULL) return 1;
            } else {
                int j = code - o->n_numeric;
                if (*p != '"') return 1;
                p = read_string(p, end, &o->columns[j]);
                if (p == NULL) return 1;
                o->validity[j * o->bitmap_bytes + (r >> 3)] |= (uint8_t)(1u << (r & 7));
            }
        }
        p = skip_ws(p, end);
        if (p >= end) return 1;
        if (*p == '}') return 0;
        if (*p != ',') return 1;
        p = skip_ws(p + 1, end);
    }
}

static void empty_row(Output *o, Py_ssize_t r) {
    double *row = o->numeric + r * o->n_numeric;
    for (int i = 0; i < o->n_numeric; i++) row[i] = NAN;
    for (int j = 0; j < o->n_categorical; j++) {
        o->columns[j].len = o->offsets[j * (o->rows + 1) + r];
        o->validity[j * o->bitmap_bytes + (r >> 3)] &= (uint8_t)~(1u << (r & 7));
    }
}

static int get_writable(PyObject *obj, Py_buffer *view, Py_ssize_t need, const char *what) {
    if (PyObject_GetBuffer(obj, view, PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS) < 0) return -1;
    if (view->len < need) {
        PyErr_Format(PyExc_ValueError, "%s: %zd bytes, needs %zd", what, view->len, need);
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

PyDoc_STRVAR(read_doc,
"read(items, names, n_numeric, numeric, offsets, validity) -> (data, fallback)\n\n"
"Feature objects into columns. items: a list of JSON values (buffer objects: msgspec.Raw,\n"
"bytes). names: a tuple of bytes, the numeric features' names then the categorical ones.\n"
"numeric: float64 rows x n_numeric, NaN-filled; offsets: int32 n_categorical x (rows+1),\n"
"zeros; validity: uint8 n_categorical x ceil(rows/8), zeros. Returns each categorical\n"
"column's UTF-8 data (bytes) and the rows that fall back (left empty).");

static PyObject *read_features(PyObject *self, PyObject *args) {
    PyObject *items, *names, *numeric_obj, *offsets_obj, *validity_obj;
    int n_numeric;
    if (!PyArg_ParseTuple(args, "O!O!iOOO", &PyList_Type, &items, &PyTuple_Type, &names,
                          &n_numeric, &numeric_obj, &offsets_obj, &validity_obj))
        return NULL;
    Py_ssize_t rows = PyList_GET_SIZE(items);
    Py_ssize_t count = PyTuple_GET_SIZE(names);
    if (n_numeric < 0 || n_numeric > count || count > 1000000) {
        PyErr_SetString(PyExc_ValueError, "n_numeric out of range");
        return NULL;
    }
    if (rows >= INT32_MAX) {
        PyErr_SetString(PyExc_ValueError, "too many rows");
        return NULL;
    }
    int n_categorical = (int)(count - n_numeric);
    Py_ssize_t bitmap_bytes = (rows + 7) / 8;

    PyObject *result = NULL, *data = NULL, *fallback = NULL;
    Py_buffer numeric = {0}, offsets = {0}, validity = {0};
    int have_numeric = 0, have_offsets = 0, have_validity = 0;
    Py_buffer *views = NULL;
    Py_ssize_t acquired = 0;
    Table table = {0};
    Growable *columns = NULL;
    uint32_t *seen = NULL;
    uint8_t *falls = NULL;

    if (get_writable(numeric_obj, &numeric, rows * n_numeric * (Py_ssize_t)sizeof(double),
                     "numeric") < 0)
        goto done;
    have_numeric = 1;
    if (get_writable(offsets_obj, &offsets, n_categorical * (rows + 1) * 4, "offsets") < 0)
        goto done;
    have_offsets = 1;
    if (get_writable(validity_obj, &validity, n_categorical * bitmap_bytes, "validity") < 0)
        goto done;
    have_validity = 1;

    size_t size = 8;
    while (size < (size_t)count * 2) size *= 2;
    table.slots = PyMem_Calloc(size, sizeof(Slot));
    table.names = PyMem_Calloc((size_t)count + 1, sizeof(char *));
    table.lens = PyMem_Calloc((size_t)count + 1, sizeof(Py_ssize_t));
    columns = PyMem_Calloc((size_t)n_categorical + 1, sizeof(Growable));
    seen = PyMem_Calloc((size_t)count + 1, sizeof(uint32_t));
    falls = PyMem_Calloc((size_t)rows + 1, 1);
    views = PyMem_Calloc((size_t)rows + 1, sizeof(Py_buffer));
    if (!table.slots || !table.names || !table.lens || !columns || !seen || !falls || !views) {
        PyErr_NoMemory();
        goto done;
    }
    table.mask = size - 1;
    table.count = (int)count;
    for (size_t i = 0; i < size; i++) table.slots[i].code = -1;
    for (Py_ssize_t k = 0; k < count; k++) {
        PyObject *name = PyTuple_GET_ITEM(names, k);
        if (!PyBytes_Check(name)) {
            PyErr_SetString(PyExc_TypeError, "names must be bytes");
            goto done;
        }
        const char *s = PyBytes_AS_STRING(name);
        Py_ssize_t len = PyBytes_GET_SIZE(name);
        table.names[k] = s;
        table.lens[k] = len;
        size_t i = (size_t)hash_bytes(s, len) & table.mask;
        int duplicate = 0;
        while (table.slots[i].code >= 0) {
            if (table.slots[i].len == len && memcmp(table.slots[i].name, s, (size_t)len) == 0)
                duplicate = 1;
            i = (i + 1) & table.mask;
        }
        if (duplicate) {
            PyErr_SetString(PyExc_ValueError, "duplicate feature name");
            goto done;
        }
        table.slots[i].name = s;
        table.slots[i].len = len;
        table.slots[i].code = (int)k;
    }
    for (Py_ssize_t r = 0; r < rows; r++) {
        if (PyObject_GetBuffer(PyList_GET_ITEM(items, r), &views[r], PyBUF_SIMPLE) < 0)
            goto done;
        acquired++;
    }

    Output out = {&table, n_numeric, n_categorical, (double *)numeric.buf,
                  (int32_t *)offsets.buf, (uint8_t *)validity.buf, rows, bitmap_bytes,
                  columns, seen};
    int overflow = 0;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t r = 0; r < rows && !overflow; r++) {
        const char *p = views[r].buf;
        if (read_object(p, p + views[r].len, &out, r)) {
            empty_row(&out, r);
            falls[r] = 1;
        }
        for (int j = 0; j < n_categorical; j++) {
            if (columns[j].len > INT32_MAX) overflow = 1;
            out.offsets[j * (rows + 1) + r + 1] = (int32_t)columns[j].len;
        }
    }
    Py_END_ALLOW_THREADS
    if (overflow) {
        PyErr_SetString(PyExc_OverflowError, "a categorical column over 2 GiB");
        goto done;
    }

    data = PyList_New(n_categorical);
    fallback = PyList_New(0);
    if (data == NULL || fallback == NULL) goto done;
    for (int j = 0; j < n_categorical; j++) {
        PyObject *b = PyBytes_FromStringAndSize(columns[j].data ? columns[j].data : "",
                                                columns[j].len);
        if (b == NULL) goto done;
        PyList_SET_ITEM(data, j, b);
    }
    for (Py_ssize_t r = 0; r < rows; r++) {
        if (!falls[r]) continue;
        PyObject *index = PyLong_FromSsize_t(r);
        if (index == NULL || PyList_Append(fallback, index) < 0) {
            Py_XDECREF(index);
            goto done;
        }
        Py_DECREF(index);
    }
    result = PyTuple_Pack(2, data, fallback);

done:
    for (Py_ssize_t r = 0; r < acquired; r++) PyBuffer_Release(&views[r]);
    if (have_numeric) PyBuffer_Release(&numeric);
    if (have_offsets) PyBuffer_Release(&offsets);
    if (have_validity) PyBuffer_Release(&validity);
    if (columns)
        for (int j = 0; j < n_categorical; j++) PyMem_RawFree(columns[j].data);
    PyMem_Free(columns);
    PyMem_Free(table.slots);
    PyMem_Free(table.names);
    PyMem_Free(table.lens);
    PyMem_Free(seen);
    PyMem_Free(falls);
    PyMem_Free(views);
    Py_XDECREF(data);
    Py_XDECREF(fallback);
    return result;
}

static PyMethodDef methods[] = {
    {"read", read_features, METH_VARARGS, read_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_feature_json",
    "Feature objects (JSON) into numeric and Arrow string columns.", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__feature_json(void) { return PyModule_Create(&module); }
