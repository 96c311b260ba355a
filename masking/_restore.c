/* masking._restore: a JSON answer's tokens replaced in its bytes, in one pass (masking/answers.py),
   the plain text deltas of a stream skipped at byte speed (masking/streaming.py), and a request's
   long string values found in its bytes (masking/jsonbody.py), the last two further down.

   restore(body: bytes, table: dict, kinds: dict | None = None) -> (bytes, list | dict) | None

   The tokens of `body` (a JSON text) as `tokens.split_json_tokens` finds them, each replaced by
   table[token] (the request's own tokens, as written -> the original as it stands between the quotes
   of a JSON string); also the tokens found, in order, or with `kinds` (token as written -> its kind)
   how many of each kind, as the unmasking event counts them. None whenever the bytes alone do not settle it
   the way the usual answer does, and the caller takes the general path: a `\u00[2-7]` escape
   anywhere (it could spell a token), a `\u` escape right before a token, an escaped underscore in
   one, or a token the table (or `kinds`) does not hold. So wherever this returns, it returns what the Python
   path would (tests/masking/test_answers_native.py checks both on generated answers).

   The grammar is tokens.py's, read left to right without going back, as its possessive regex
   does: "AWS", one to four "_" + [A-Z][A-Z0-9]{0,11}, "_" + [0-9]{3,12}, and no word character
   after it. Before it, no word character, unless that character is the letter of a JSON escape
   (\n, \t, ...): the run of backslashes before the letter is odd. Linear in the body: memchr finds
   each "AWS", and a token reads at most TOKEN_MAX_LEN bytes and the few before it. */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

#define MAX_SEGMENTS 4
#define MAX_SEGMENT 12
#define MIN_DIGITS 3
#define MAX_DIGITS 12

static int is_word(unsigned char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
}

static int is_upper(unsigned char c) { return c >= 'A' && c <= 'Z'; }
static int is_digit(unsigned char c) { return c >= '0' && c <= '9'; }

enum { NO_TOKEN = 0, TOKEN = 1, UNSURE = -1 };

/* Whether the "AWS" at `at` may start a token, going by what stands before it. */
static int left_boundary(const unsigned char *s, Py_ssize_t at) {
    if (at == 0 || !is_word(s[at - 1]))
        return TOKEN;
    unsigned char letter = s[at - 1];
    if (at >= 2 && s[at - 2] == '\\' && strchr("bfnrt", letter) != NULL) {
        Py_ssize_t run = 0;
        while (at - 2 - run >= 0 && s[at - 2 - run] == '\\')
            run++;
        return run % 2 ? TOKEN : NO_TOKEN; /* odd: an escape (a control character), even: a letter */
    }
    if (at >= 6 && s[at - 6] == '\\' && s[at - 5] == 'u')
        return UNSURE; /* a \u escape, or four characters that only look like one */
    return NO_TOKEN;
}

/* Whether an escaped underscore starts at `i`: "\\_" or "\\\\_" in the JSON (Markdown's escape, escaped). */
static int escaped_underscore(const unsigned char *s, Py_ssize_t n, Py_ssize_t i) {
    if (i + 2 < n && s[i] == '\\' && s[i + 1] == '\\' && s[i + 2] == '_')
        return 1;
    return i + 4 < n && memcmp(s + i, "\\\\\\\\_", 5) == 0;
}

/* The end of the token whose "AWS" is at `at`; *verdict NO_TOKEN (none there), TOKEN, or UNSURE
   (an escaped underscore: tokens.py reads those). */
static Py_ssize_t token_end(const unsigned char *s, Py_ssize_t n, Py_ssize_t at, int *verdict) {
    Py_ssize_t i = at + 3;
    int segments = 0;
    *verdict = NO_TOKEN;
    while (segments < MAX_SEGMENTS) {
        if (escaped_underscore(s, n, i)) {
            *verdict = UNSURE;
            return 0;
        }
        if (i + 1 >= n || s[i] != '_' || !is_upper(s[i + 1]))
            break; /* this segment fails; those before it stand */
        Py_ssize_t j = i + 2, stop = i + 1 + MAX_SEGMENT;
        while (j < n && j < stop && (is_upper(s[j]) || is_digit(s[j])))
            j++;
        i = j;
        segments++;
    }
    if (segments == 0)
        return 0;
    if (escaped_underscore(s, n, i)) {
        *verdict = UNSURE;
        return 0;
    }
    if (i >= n || s[i] != '_')
        return 0;
    Py_ssize_t j = i + 1, stop = i + 1 + MAX_DIGITS;
    while (j < n && j < stop && is_digit(s[j]))
        j++;
    if (j - (i + 1) < MIN_DIGITS || (j < n && is_word(s[j])))
        return 0;
    *verdict = TOKEN;
    return j;
}

/* Whether `s` holds a \u escape of a printable ASCII character (\u0020-\u007f): it could spell a token.
   memchr for the backslash (vectorised, several times memmem's speed: backslashes are few). */
static int has_ascii_escape(const unsigned char *s, Py_ssize_t n) {
    const unsigned char *p = s, *end = s + n;
    while (end - p >= 5 && (p = memchr(p, '\\', end - p - 4)) != NULL) {
        if (p[1] == 'u' && p[2] == '0' && p[3] == '0' && p[4] >= '2' && p[4] <= '7')
            return 1;
        p += 1;
    }
    return 0;
}

/* The next "AWS" in s[from:n], or NULL: memchr for the "A", then the two letters after it. */
static const unsigned char *find_aws(const unsigned char *s, Py_ssize_t from, Py_ssize_t n) {
    const unsigned char *p = s + from, *end = s + n;
    while (end - p >= 3 && (p = memchr(p, 'A', end - p - 2)) != NULL) {
        if (p[1] == 'W' && p[2] == 'S')
            return p;
        p += 1;
    }
    return NULL;
}

/* The tokens found in a text and what replaces each: both passes below collect them the same way. */
typedef struct {
    Py_ssize_t start, end;
    PyObject *original; /* a reference of our own: allocating may run a collection, and a finalizer code */
} Replacement;

typedef struct {
    Replacement *items;
    Py_ssize_t count, capacity;
    Py_ssize_t growth; /* bytes the replaced text gains (or loses) */
    PyObject *found;   /* the tokens, as bytes, in order; with `kinds`, kind -> how many */
    PyObject *kinds;   /* borrowed, may be NULL: token as written -> its kind */
} Replacements;

static int replacements_init(Replacements *r, PyObject *kinds) {
    *r = (Replacements){NULL, 0, 0, 0, kinds != NULL ? PyDict_New() : PyList_New(0), kinds};
    return r->found == NULL ? -1 : 0;
}

/* counts[kind] += 1 (a new entry at 1). */
static int count_kind(PyObject *counts, PyObject *kind) {
    PyObject *seen = PyDict_GetItemWithError(counts, kind); /* borrowed, read before the write below */
    if (seen == NULL && PyErr_Occurred())
        return -1;
    Py_ssize_t n = seen == NULL ? 0 : PyLong_AsSsize_t(seen);
    if (n == -1 && PyErr_Occurred())
        return -1;
    PyObject *value = PyLong_FromSsize_t(n + 1);
    if (value == NULL)
        return -1;
    int set = PyDict_SetItem(counts, kind, value);
    Py_DECREF(value);
    return set;
}

static void replacements_free(Replacements *r) {
    for (Py_ssize_t k = 0; k < r->count; k++)
        Py_DECREF(r->items[k].original);
    PyMem_Free(r->items);
    Py_XDECREF(r->found);
}

/* The token s[start:end] looked up in `table` and recorded: 1, or 0 when the table does not hold it
   (the caller's general path looks it up), -1 on an error (set). */
static int replacements_add(Replacements *r, const unsigned char *s, Py_ssize_t start, Py_ssize_t end, PyObject *table) {
    PyObject *token = PyBytes_FromStringAndSize((const char *)s + start, end - start);
    if (token == NULL)
        return -1;
    PyObject *original = PyDict_GetItemWithError(table, token); /* borrowed: made ours below */
    PyObject *kind = NULL;                                       /* borrowed, used at once */
    if (original != NULL && PyBytes_Check(original) && r->kinds != NULL)
        kind = PyDict_GetItemWithError(r->kinds, token);
    if (original == NULL || !PyBytes_Check(original) || (r->kinds != NULL && kind == NULL)) {
        Py_DECREF(token);
        return PyErr_Occurred() ? -1 : 0;
    }
    Py_INCREF(original);
    int appended = kind != NULL ? count_kind(r->found, kind) : PyList_Append(r->found, token);
    Py_DECREF(token);
    if (appended == 0 && r->count == r->capacity) {
        Py_ssize_t capacity = r->capacity ? 2 * r->capacity : 16;
        Replacement *grown = PyMem_Realloc(r->items, capacity * sizeof(Replacement));
        if (grown == NULL) {
            PyErr_NoMemory();
            appended = -1;
        } else {
            r->items = grown;
            r->capacity = capacity;
        }
    }
    if (appended < 0) {
        Py_DECREF(original);
        return -1;
    }
    r->items[r->count++] = (Replacement){start, end, original};
    r->growth += PyBytes_GET_SIZE(original) - (end - start);
    return 1;
}

/* s[from:to] with the recorded tokens replaced (they lie within it, in order). */
static PyObject *replacements_apply(const Replacements *r, const unsigned char *s, Py_ssize_t from, Py_ssize_t to) {
    PyObject *text = PyBytes_FromStringAndSize(NULL, to - from + r->growth);
    if (text == NULL)
        return NULL;
    char *out = PyBytes_AS_STRING(text);
    Py_ssize_t copied = from;
    for (Py_ssize_t k = 0; k < r->count; k++) {
        const Replacement *item = &r->items[k];
        memcpy(out, s + copied, item->start - copied);
        out += item->start - copied;
        Py_ssize_t length = PyBytes_GET_SIZE(item->original);
        memcpy(out, PyBytes_AS_STRING(item->original), length);
        out += length;
        copied = item->end;
    }
    memcpy(out, s + copied, to - copied);
    return text;
}

/* (text, the tokens found) as the passes return it; `text` is a new reference, taken. */
static PyObject *replacements_result(Replacements *r, PyObject *text) {
    PyObject *result = text == NULL ? NULL : PyTuple_Pack(2, text, r->found);
    Py_XDECREF(text);
    replacements_free(r);
    return result;
}

static PyObject *restore(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs) {
    PyObject *kinds = nargs == 3 && args[2] != Py_None ? args[2] : NULL;
    if (nargs < 2 || nargs > 3 || !PyBytes_Check(args[0]) || !PyDict_Check(args[1]) ||
        (kinds != NULL && !PyDict_Check(kinds))) {
        PyErr_SetString(PyExc_TypeError, "restore(body: bytes, table: dict, kinds: dict | None = None)");
        return NULL;
    }
    PyObject *body = args[0], *table = args[1];
    const unsigned char *s = (const unsigned char *)PyBytes_AS_STRING(body);
    Py_ssize_t n = PyBytes_GET_SIZE(body);
    if (has_ascii_escape(s, n))
        Py_RETURN_NONE;
    Replacements r;
    if (replacements_init(&r, kinds) < 0)
        return NULL;
    Py_ssize_t pos = 0;
    const unsigned char *hit;
    while ((hit = find_aws(s, pos, n)) != NULL) {
        Py_ssize_t at = hit - s, end = 0;
        int verdict = left_boundary(s, at);
        if (verdict == TOKEN)
            end = token_end(s, n, at, &verdict);
        if (verdict == NO_TOKEN) {
            pos = at + 1;
            continue;
        }
        int added = verdict == UNSURE ? 0 : replacements_add(&r, s, at, end, table);
        if (added <= 0) { /* unsure, or not one of the request's tokens: the caller's general path */
            replacements_free(&r);
            if (added < 0)
                return NULL;
            Py_RETURN_NONE;
        }
        pos = end;
    }
    return replacements_result(&r, r.count ? replacements_apply(&r, s, 0, n) : Py_NewRef(body));
}

/* --- streams: a run of plain text deltas (masking/streaming.py, StreamRestorer.feed) ------------- */

static const char DELTA_END[] = "\"}}\n\n"; /* a delta's text, then the end of its JSON and of the event */
#define DELTA_END_LEN 5

/* Where the plain text starting at `i` ends: no quote, line end, \u escape or "AWS", and no "A" or
   "AW" right before the closing quote (a token's start): streaming._PLAIN_TEXT, read the same way. */
static Py_ssize_t plain_end(const unsigned char *s, Py_ssize_t n, Py_ssize_t i) {
    while (i < n) {
        unsigned char c = s[i];
        if (c == '"' || c == '\n' || c == '\r')
            return i;
        if (c == '\\') {
            if (i + 1 < n && strchr("\"\\/bfnrt", s[i + 1]) != NULL && s[i + 1] != '\0') {
                i += 2;
                continue;
            }
            return i;
        }
        if (c == 'A') {
            if (i + 2 < n && s[i + 1] == 'W' && s[i + 2] == 'S')
                return i;
            if (i + 1 < n && s[i + 1] == '"')
                return i;
            if (i + 2 < n && s[i + 1] == 'W' && s[i + 2] == '"')
                return i;
        }
        i++;
    }
    return i;
}

static int at(const unsigned char *s, Py_ssize_t n, Py_ssize_t i, const char *what, Py_ssize_t length) {
    return i + length <= n && memcmp(s + i, what, length) == 0;
}

/* plain_run(buf, start, prefix) -> (end, text_start, text_stop) | None

   The deltas that can go out as they came, from `start` (just after the first one's `prefix`, the
   framing up to its text): its plain text and end, then every following delta framed by `prefix`
   whose text is plain, up to the first that is not. (`end` of the last one, and the span of the last
   non-empty text, else of the first text.) None when the first one is not plain. What
   `streaming._run_of(prefix).match(buf, start)` finds, at byte speed. */
static PyObject *plain_run(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs) {
    Py_ssize_t start;
    if (nargs != 3 || !PyBytes_Check(args[0]) || !PyBytes_Check(args[2])) {
        PyErr_SetString(PyExc_TypeError, "plain_run(buf: bytes, start: int, prefix: bytes)");
        return NULL;
    }
    start = PyLong_AsSsize_t(args[1]);
    if (start == -1 && PyErr_Occurred())
        return NULL;
    const unsigned char *s = (const unsigned char *)PyBytes_AS_STRING(args[0]);
    const char *prefix = PyBytes_AS_STRING(args[2]);
    Py_ssize_t n = PyBytes_GET_SIZE(args[0]), prefix_len = PyBytes_GET_SIZE(args[2]);
    if (start < 0) {
        PyErr_SetString(PyExc_ValueError, "start before buf");
        return NULL;
    }
    if (start > n) /* as the regex: a match attempted past the end finds nothing */
        Py_RETURN_NONE;
    Py_ssize_t stop = plain_end(s, n, start);
    if (!at(s, n, stop, DELTA_END, DELTA_END_LEN))
        Py_RETURN_NONE;
    Py_ssize_t text_start = start, text_stop = stop, pos = stop + DELTA_END_LEN;
    while (at(s, n, pos, prefix, prefix_len)) {
        Py_ssize_t text = pos + prefix_len;
        if (at(s, n, text, DELTA_END, DELTA_END_LEN)) { /* an empty text */
            pos = text + DELTA_END_LEN;
            continue;
        }
        Py_ssize_t end = plain_end(s, n, text);
        if (!at(s, n, end, DELTA_END, DELTA_END_LEN))
            break;
        text_start = text;
        text_stop = end;
        pos = end + DELTA_END_LEN;
    }
    return Py_BuildValue("(nnn)", pos, text_start, text_stop);
}

/* The length of the UTF-8 sequence of two to four bytes at s[i] (stop: the end), 0 if it is not one
   (a stray continuation byte, an overlong form, a surrogate, past U+10FFFF): orjson refuses those. */
static Py_ssize_t utf8_length(const unsigned char *s, Py_ssize_t i, Py_ssize_t stop) {
    unsigned char c = s[i], low = 0x80, high = 0xBF;
    Py_ssize_t length;
    if (c >= 0xC2 && c <= 0xDF)
        length = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        length = 3;
        low = c == 0xE0 ? 0xA0 : 0x80;
        high = c == 0xED ? 0x9F : 0xBF;
    } else if (c >= 0xF0 && c <= 0xF4) {
        length = 4;
        low = c == 0xF0 ? 0x90 : 0x80;
        high = c == 0xF4 ? 0x8F : 0xBF;
    } else
        return 0;
    if (i + length > stop || s[i + 1] < low || s[i + 1] > high)
        return 0;
    for (Py_ssize_t k = 2; k < length; k++)
        if (s[i + k] < 0x80 || s[i + k] > 0xBF)
            return 0;
    return length;
}

/* restore_delta(buf, start, stop, table, after_word) -> (new text or None, tokens) | None

   A text or thinking delta's text, buf[start:stop] as its JSON string holds it (between the quotes),
   with every token replaced from `table` (as `restore` does): the new text (None: unchanged) and the
   tokens found. `after_word`: the character before the text (the block's last one sent) is a word
   character, so a token cannot start the text. None, for streaming.StreamRestorer to do it in Python,
   unless the text is valid UTF-8 and JSON with no \u escape, every token in it whole, known and
   written without escapes, and its last character no token's (nothing to hold back for the next delta). */
static PyObject *restore_delta(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 5 || !PyBytes_Check(args[0]) || !PyDict_Check(args[3])) {
        PyErr_SetString(PyExc_TypeError, "restore_delta(buf: bytes, start: int, stop: int, table: dict, after_word: bool)");
        return NULL;
    }
    Py_ssize_t start = PyLong_AsSsize_t(args[1]), stop = PyLong_AsSsize_t(args[2]);
    if ((start == -1 || stop == -1) && PyErr_Occurred())
        return NULL;
    int after_word = PyObject_IsTrue(args[4]);
    if (after_word < 0)
        return NULL;
    const unsigned char *s = (const unsigned char *)PyBytes_AS_STRING(args[0]);
    if (start < 0 || stop < start || stop > PyBytes_GET_SIZE(args[0])) {
        PyErr_SetString(PyExc_ValueError, "start and stop outside buf");
        return NULL;
    }
    PyObject *table = args[3];
    if (stop > start) {
        unsigned char last = s[stop - 1];
        if (is_upper(last) || is_digit(last) || last == '_' || last == '\\')
            Py_RETURN_NONE; /* it could be, or end, the start of a token: held back in Python */
    }
    Replacements r;
    if (replacements_init(&r, NULL) < 0)
        return NULL;
    Py_ssize_t i = start;
    while (i < stop) {
        unsigned char c = s[i];
        if (c >= 0x80) {
            Py_ssize_t length = utf8_length(s, i, stop);
            if (length == 0)
                goto unsure; /* not UTF-8: the Python path decides what to do with it */
            i += length;
            continue;
        }
        if (c < 0x20 || c == '"')
            goto unsure; /* not the inside of a JSON string */
        if (c == '\\') {
            if (i + 1 >= stop || strchr("\"\\/bfnrt", s[i + 1]) == NULL || s[i + 1] == '\0')
                goto unsure; /* a \u escape (it could spell a letter) or no JSON */
            i += 2;
            continue;
        }
        if (c != 'A' || i + 2 >= stop || s[i + 1] != 'W' || s[i + 2] != 'S') {
            i++;
            continue;
        }
        int verdict = i == start ? (after_word ? NO_TOKEN : TOKEN) : left_boundary(s, i);
        Py_ssize_t end = 0;
        if (verdict == TOKEN)
            end = token_end(s, stop, i, &verdict);
        if (verdict == NO_TOKEN) {
            i++;
            continue;
        }
        int added = verdict == UNSURE ? 0 : replacements_add(&r, s, i, end, table);
        if (added < 0) {
            replacements_free(&r);
            return NULL;
        }
        if (added == 0)
            goto unsure; /* an escaped underscore, or not one of the request's tokens */
        i = end;
    }
    return replacements_result(&r, r.count ? replacements_apply(&r, s, start, stop) : Py_NewRef(Py_None));

unsure:
    replacements_free(&r);
    Py_RETURN_NONE;
}

/* --- requests: long string values, read aside (masking/jsonbody.py) ------------------------------ */

/* long_values(body, min_length) -> [(start, end), ...]

   The string values of the JSON text `body` with at least `min_length` bytes between their quotes:
   the spans of what stands between the quotes, in order. Keys (a string followed by ':') are left
   out. Read as JSON delimits strings: outside one, a quote opens it; inside, a quote closes it unless
   an odd run of backslashes stands before it. Wherever `body` is valid JSON these are exactly the
   strings a parser reads; the caller parses the rest, and each span, so an invalid body is still
   refused. Linear: memchr finds each quote, and a run of backslashes is read once. */
static PyObject *long_values(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2 || !PyBytes_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "long_values(body: bytes, min_length: int)");
        return NULL;
    }
    Py_ssize_t min_length = PyLong_AsSsize_t(args[1]);
    if (min_length == -1 && PyErr_Occurred())
        return NULL;
    const unsigned char *s = (const unsigned char *)PyBytes_AS_STRING(args[0]);
    Py_ssize_t n = PyBytes_GET_SIZE(args[0]);
    PyObject *spans = PyList_New(0);
    if (spans == NULL)
        return NULL;
    Py_ssize_t i = 0;
    while (i < n) {
        const unsigned char *open = memchr(s + i, '"', n - i);
        if (open == NULL)
            break;
        Py_ssize_t start = open - s + 1, j = start, end = -1;
        while (j < n) {
            const unsigned char *quote = memchr(s + j, '"', n - j);
            if (quote == NULL)
                break;
            Py_ssize_t at = quote - s, run = 0;
            while (at - 1 - run >= start && s[at - 1 - run] == '\\')
                run++;
            if (run % 2 == 0) {
                end = at;
                break;
            }
            j = at + 1;
        }
        if (end < 0)
            break; /* an unterminated string: the parser refuses the body */
        Py_ssize_t after = end + 1;
        while (after < n && (s[after] == ' ' || s[after] == '\t' || s[after] == '\n' || s[after] == '\r'))
            after++;
        if (end - start >= min_length && !(after < n && s[after] == ':')) {
            PyObject *span = Py_BuildValue("(nn)", start, end);
            if (span == NULL || PyList_Append(spans, span) < 0) {
                Py_XDECREF(span);
                Py_DECREF(spans);
                return NULL;
            }
            Py_DECREF(span);
        }
        i = end + 1;
    }
    return spans;
}

static PyMethodDef methods[] = {
    {"restore", (PyCFunction)(void (*)(void))restore, METH_FASTCALL,
     "restore(body, table, kinds=None) -> (restored body, tokens found or counts by kind) | None: see masking/_restore.c."},
    {"restore_delta", (PyCFunction)(void (*)(void))restore_delta, METH_FASTCALL,
     "restore_delta(buf, start, stop, table, after_word) -> (text | None, tokens) | None: see _restore.c."},
    {"long_values", (PyCFunction)(void (*)(void))long_values, METH_FASTCALL,
     "long_values(body, min_length) -> [(start, end), ...]: see masking/_restore.c."},
    {"plain_run", (PyCFunction)(void (*)(void))plain_run, METH_FASTCALL,
     "plain_run(buf, start, prefix) -> (end, text_start, text_stop) | None: see masking/_restore.c."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    .m_base = PyModuleDef_HEAD_INIT,
    .m_name = "masking._restore",
    .m_size = 0,
    .m_methods = methods,
};

PyMODINIT_FUNC PyInit__restore(void) { return PyModule_Create(&module); }
