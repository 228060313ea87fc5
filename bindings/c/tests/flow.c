/*
 * The whole flow of the device object through the C ABI, in C99:
 * two accounts, a linked device with the SAS compared on both sides,
 * fan-out to every device of both accounts, revocation, reopening from the
 * store, restore from a backup, restore from the recovery phrase and seed,
 * migration from the single-blob fixture, two processes on one store, a
 * store over C callbacks, and every error path with bad input.
 *
 * Usage: flow FIXTURE_JSON   (tests/data/stored-device-v1.json)
 * Exits 0 when every check passed; prints "flow.c: N checks passed".
 */
#include "session_ratchet.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int checks = 0;
static int verbose = 0;

static void fail(int line, const char *what, const char *detail) {
  fprintf(stderr, "flow.c:%d: FAILED: %s%s%s\n", line, what, detail ? ": " : "",
          detail ? detail : "");
  exit(1);
}

#define CHECK(cond)                                                            \
  do {                                                                         \
    checks++;                                                                  \
    if (!(cond)) fail(__LINE__, #cond, NULL);                                  \
  } while (0)

/* Runs a call that must succeed; `err` names its error slot. */
#define OK(call)                                                               \
  do {                                                                         \
    sr_error *err = NULL;                                                      \
    sr_status st_ = (call);                                                    \
    checks++;                                                                  \
    if (st_ != SR_OK) {                                                        \
      char buf_[1024];                                                         \
      snprintf(buf_, sizeof buf_, "%s (%d): %s", sr_status_name(st_), st_,     \
               sr_error_message(err));                                         \
      fail(__LINE__, #call, buf_);                                             \
    }                                                                          \
    if (err != NULL) fail(__LINE__, #call, "error set on success");            \
  } while (0)

/* Runs a call that must fail with `code`, with an error object holding the
 * same code and a message. */
#define FAILS(code, call)                                                      \
  do {                                                                         \
    sr_error *err = NULL;                                                      \
    sr_status st_ = (call);                                                    \
    expect_error((code), st_, err, #call, __LINE__);                           \
    sr_error_free(err);                                                        \
  } while (0)

static void expect_error(sr_status code, sr_status got, const sr_error *err,
                         const char *call, int line) {
  char buf[1024];
  checks++;
  if (got != code) {
    snprintf(buf, sizeof buf, "expected %s, got %s: %s", sr_status_name(code),
             sr_status_name(got), sr_error_message(err));
    fail(line, call, buf);
  }
  if (err == NULL) fail(line, call, "no error object");
  if (sr_error_code(err) != code) fail(line, call, "error object has another code");
  if (strlen(sr_error_message(err)) < 10) fail(line, call, "message too short");
  if (verbose) printf("  %-28s %s\n", sr_status_name(code), sr_error_message(err));
}

static const uint64_t NOW = 1767225600u;

static void fill(uint8_t *p, size_t n, uint8_t v) { memset(p, v, n); }

static int buf_eq(const sr_buffer *b, const uint8_t *p, size_t n) {
  return b->len == n && (n == 0 || memcmp(b->ptr, p, n) == 0);
}

/* ---- a record store over C callbacks: an array of (key, value) ------------ */

typedef struct {
  uint8_t *key;
  size_t key_len;
  uint8_t *value;
  size_t value_len;
} entry;

typedef struct {
  entry *entries;
  size_t len, cap;
  int fail_next_commit;  /* the next commit fails, as a full disk would */
  sr_device *reenter;    /* a get calls back into this device (a misuse) */
  sr_status reenter_status;
  int *freed;            /* set when the library releases user_data */
} c_store;

static entry *find(c_store *s, const uint8_t *key, size_t len) {
  size_t i;
  for (i = 0; i < s->len; i++)
    if (s->entries[i].key_len == len && memcmp(s->entries[i].key, key, len) == 0)
      return &s->entries[i];
  return NULL;
}

/* A misuse the library must refuse: calling into the device whose call is
 * running this callback. */
static void reenter(c_store *s) {
  if (s->reenter != NULL) {
    uint64_t g;
    sr_error *err = NULL;
    s->reenter_status = sr_device_generation(s->reenter, &g, &err);
    sr_error_free(err);
    s->reenter = NULL;
  }
}

static int32_t c_get(void *user_data, const uint8_t *key, size_t key_len,
                     sr_store_reply *reply) {
  c_store *s = (c_store *)user_data;
  entry *e;
  reenter(s);
  e = find(s, key, key_len);
  if (e != NULL && sr_store_reply_value(reply, e->value, e->value_len, NULL) != SR_OK)
    return 1;
  return 0;
}

static void put(c_store *s, const uint8_t *key, size_t key_len, const uint8_t *value,
                size_t value_len) {
  entry *e = find(s, key, key_len);
  uint8_t *copy = (uint8_t *)malloc(value_len);
  if (copy == NULL) abort();
  memcpy(copy, value, value_len);
  if (e == NULL) {
    if (s->len == s->cap) {
      s->cap = s->cap ? 2 * s->cap : 16;
      s->entries = (entry *)realloc(s->entries, s->cap * sizeof(entry));
      if (s->entries == NULL) abort();
    }
    e = &s->entries[s->len++];
    e->key = (uint8_t *)malloc(key_len);
    if (e->key == NULL) abort();
    memcpy(e->key, key, key_len);
    e->key_len = key_len;
  } else {
    free(e->value);
  }
  e->value = copy;
  e->value_len = value_len;
}

static void del(c_store *s, const uint8_t *key, size_t key_len) {
  entry *e = find(s, key, key_len);
  if (e == NULL) return;
  free(e->key);
  free(e->value);
  *e = s->entries[--s->len];
}

static int32_t c_commit(void *user_data, const uint8_t *head_key, size_t head_key_len,
                        const uint8_t *expected, size_t expected_len,
                        const sr_record_write *writes, size_t writes_len,
                        sr_store_reply *reply) {
  c_store *s = (c_store *)user_data;
  entry *head = find(s, head_key, head_key_len);
  size_t i;
  reenter(s);
  if (s->fail_next_commit) {
    s->fail_next_commit = 0;
    sr_store_reply_error(reply, "disk full (test)", NULL);
    return -1;
  }
  /* The condition of spec 10.2: the head holds exactly `expected`. */
  if (expected == NULL ? head != NULL
                       : (head == NULL || head->value_len != expected_len ||
                          memcmp(head->value, expected, expected_len) != 0))
    return SR_COMMIT_CONFLICT;
  /* Single-threaded and in memory: applying in order is atomic here. */
  for (i = 0; i < writes_len; i++) {
    if (writes[i].op == SR_WRITE_PUT)
      put(s, writes[i].key, writes[i].key_len, writes[i].value, writes[i].value_len);
    else
      del(s, writes[i].key, writes[i].key_len);
  }
  return SR_COMMIT_COMMITTED;
}

static void c_free(void *user_data) {
  c_store *s = (c_store *)user_data;
  size_t i;
  for (i = 0; i < s->len; i++) {
    free(s->entries[i].key);
    free(s->entries[i].value);
  }
  free(s->entries);
  *s->freed = 1;
  free(s);
}

/* ---- helpers ------------------------------------------------------------- */

static sr_device_info info(const char *name, uint8_t platform) {
  sr_device_info i;
  i.platform = platform;
  i.description = name;
  i.version_major = 1;
  i.version_minor = 2;
  i.version_patch = 3;
  return i;
}

static void account_key(const sr_device *d, uint8_t out[SR_ACCOUNT_KEY_LEN]) {
  OK(sr_device_account_key(d, out, SR_ACCOUNT_KEY_LEN, &err));
}

static void device_id(const sr_device *d, uint8_t out[SR_DEVICE_ID_LEN]) {
  OK(sr_device_id(d, out, SR_DEVICE_ID_LEN, &err));
}

static uint64_t generation(const sr_device *d) {
  uint64_t g = 0;
  OK(sr_device_generation(d, &g, &err));
  return g;
}

/* Receives `e` on `d` and checks its content and sender. */
static void expect_message(sr_device *d, const sr_envelope *e, const char *text,
                           const uint8_t sender[SR_ACCOUNT_KEY_LEN],
                           const uint8_t conversation[SR_ACCOUNT_KEY_LEN]) {
  sr_received r;
  OK(sr_device_receive(d, e->bytes.ptr, e->bytes.len, &r, &err));
  CHECK(r.kind == SR_CONTENT_MESSAGE);
  CHECK(buf_eq(&r.content, (const uint8_t *)text, strlen(text)));
  CHECK(memcmp(r.sender, sender, SR_ACCOUNT_KEY_LEN) == 0);
  CHECK(memcmp(r.conversation, conversation, SR_ACCOUNT_KEY_LEN) == 0);
  sr_received_free(&r);
  CHECK(r.content.ptr == NULL && r.content.len == 0);
}

/* The mailboxes of `e` are exactly `a` then (if not NULL) `b`. */
static int mailboxes_are(const sr_envelope *e, const uint8_t *a, const uint8_t *b) {
  size_t n = b ? 2 : 1;
  if (e->mailboxes.len != n * SR_ACCOUNT_KEY_LEN) return 0;
  if (memcmp(e->mailboxes.ptr, a, SR_ACCOUNT_KEY_LEN) != 0) return 0;
  return b == NULL ||
         memcmp(e->mailboxes.ptr + SR_ACCOUNT_KEY_LEN, b, SR_ACCOUNT_KEY_LEN) == 0;
}

static void send_text(sr_device *from, const uint8_t to[SR_ACCOUNT_KEY_LEN],
                      const char *text, uint64_t now, sr_envelopes *out) {
  OK(sr_device_send(from, to, SR_ACCOUNT_KEY_LEN, (const uint8_t *)text, strlen(text),
                    now, out, &err));
  CHECK(out->len == 1);
}

static char *read_file(const char *path) {
  FILE *f = fopen(path, "rb");
  long n;
  char *text;
  if (f == NULL) return NULL;
  fseek(f, 0, SEEK_END);
  n = ftell(f);
  fseek(f, 0, SEEK_SET);
  text = (char *)malloc((size_t)n + 1);
  if (text == NULL || fread(text, 1, (size_t)n, f) != (size_t)n) abort();
  text[n] = 0;
  fclose(f);
  return text;
}

/* The hex string of "name": "..." in a JSON text, decoded; NULL if absent. */
static uint8_t *json_hex(const char *json, const char *name, size_t *len) {
  char pattern[64];
  const char *p, *end;
  uint8_t *out;
  size_t i;
  snprintf(pattern, sizeof pattern, "\"%s\": \"", name);
  p = strstr(json, pattern);
  if (p == NULL) return NULL;
  p += strlen(pattern);
  end = strchr(p, '"');
  if (end == NULL || (end - p) % 2 != 0) return NULL;
  *len = (size_t)(end - p) / 2;
  out = (uint8_t *)malloc(*len);
  if (out == NULL) abort();
  for (i = 0; i < *len; i++) {
    unsigned v;
    if (sscanf(p + 2 * i, "%2x", &v) != 1) abort();
    out[i] = (uint8_t)v;
  }
  return out;
}

/* ---- the flow ------------------------------------------------------------ */

int main(int argc, char **argv) {
  uint8_t key_a[SR_STORAGE_KEY_LEN], key_b[SR_STORAGE_KEY_LEN], key_l[SR_STORAGE_KEY_LEN];
  uint8_t alice_key[SR_ACCOUNT_KEY_LEN], bob_key[SR_ACCOUNT_KEY_LEN], tmp_key[SR_ACCOUNT_KEY_LEN];
  uint8_t laptop_id[SR_DEVICE_ID_LEN];
  uint8_t sid_bytes[SR_SESSION_ID_LEN];
  sr_store *store_a, *store_b, *store_l, *backup_a;
  sr_device *alice, *bob, *laptop;
  sr_buffer seed, list_a, list_b, record_a, record_b;
  sr_device_info alice_info = info("Alice's phone", SR_PLATFORM_IOS);
  sr_device_info bob_info = info("Bob's desktop", SR_PLATFORM_DESKTOP);
  sr_envelopes out;
  sr_received r;
  char *alice_sid, *bob_sid, *phrase;
  uint64_t g;
  int freed = 0;
  const char *fixture = argc > 1 ? argv[1] : "tests/data/stored-device-v1.json";
  verbose = getenv("SR_TEST_QUIET") == NULL;

  CHECK(strlen(sr_version()) > 0);
  CHECK(strcmp(sr_status_name(SR_ERR_NOT_A_RECIPIENT), "SR_ERR_NOT_A_RECIPIENT") == 0);
  CHECK(strcmp(sr_status_name(9999), "SR_ERR_UNKNOWN_CODE") == 0);
  fill(key_a, sizeof key_a, 0xA1);
  fill(key_b, sizeof key_b, 0xB2);
  fill(key_l, sizeof key_l, 0xC3);

  /* -- two accounts --------------------------------------------------------- */
  OK(sr_memory_store_new(&store_a, &err));
  OK(sr_memory_store_new(&store_b, &err));
  OK(sr_device_create_account(store_a, key_a, sizeof key_a, NULL, &alice_info, NOW, &alice,
                              &seed, &err));
  CHECK(seed.len == SR_RECOVERY_SEED_LEN);
  OK(sr_device_create_account(store_b, key_b, sizeof key_b, NULL, &bob_info, NOW, &bob,
                              &list_b /* recovery seed, not kept */, &err));
  sr_buffer_free(&list_b);
  CHECK(list_b.ptr == NULL && list_b.len == 0);
  sr_buffer_free(&list_b); /* twice is harmless */
  account_key(alice, alice_key);
  account_key(bob, bob_key);
  CHECK(memcmp(alice_key, bob_key, SR_ACCOUNT_KEY_LEN) != 0);
  {
    bool held = false, revoked = true;
    OK(sr_device_holds_account_key(alice, &held, &err));
    OK(sr_device_is_revoked(alice, &revoked, &err));
    CHECK(held && !revoked);
  }
  CHECK(generation(alice) >= 1);

  /* Each publishes its list and prekey record; the other adds it by Session ID. */
  OK(sr_device_session_id(alice, &alice_sid, &err));
  OK(sr_device_session_id(bob, &bob_sid, &err));
  CHECK(strlen(bob_sid) == SR_SESSION_ID_HEX_LEN && strncmp(bob_sid, "05", 2) == 0);
  OK(sr_device_device_list(alice, &list_a, &err));
  OK(sr_device_prekey_record(alice, &record_a, &err));
  OK(sr_device_device_list(bob, &list_b, &err));
  OK(sr_device_prekey_record(bob, &record_b, &err));
  OK(sr_device_add_contact(alice, bob_sid, list_b.ptr, list_b.len, record_b.ptr, record_b.len,
                           tmp_key, sizeof tmp_key, &err));
  CHECK(memcmp(tmp_key, bob_key, SR_ACCOUNT_KEY_LEN) == 0);
  OK(sr_device_session_id_bytes(alice, sid_bytes, sizeof sid_bytes, &err));
  OK(sr_device_add_contact_bytes(bob, sid_bytes, sizeof sid_bytes, list_a.ptr, list_a.len,
                                 record_a.ptr, record_a.len, NULL, 0, &err));
  {
    sr_buffer contacts;
    OK(sr_device_contacts(bob, &contacts, &err));
    CHECK(buf_eq(&contacts, alice_key, SR_ACCOUNT_KEY_LEN));
    sr_buffer_free(&contacts);
  }

  /* First message and reply. */
  send_text(alice, bob_key, "hi Bob", NOW + 1, &out);
  CHECK(mailboxes_are(&out.ptr[0], bob_key, NULL));
  OK(sr_device_receive(bob, out.ptr[0].bytes.ptr, out.ptr[0].bytes.len, &r, &err));
  CHECK(r.new_session && r.kind == SR_CONTENT_MESSAGE);
  CHECK(buf_eq(&r.content, (const uint8_t *)"hi Bob", 6));
  CHECK(memcmp(r.sender, alice_key, 32) == 0 && memcmp(r.conversation, bob_key, 32) == 0);
  sr_received_free(&r);
  /* The same envelope again is a duplicate: refused, nothing changes. */
  FAILS(SR_ERR_UNDECRYPTABLE,
        sr_device_receive(bob, out.ptr[0].bytes.ptr, out.ptr[0].bytes.len, &r, &err));
  {
    sr_error *e = NULL;
    CHECK(sr_device_receive(bob, out.ptr[0].bytes.ptr, out.ptr[0].bytes.len, &r, &e) ==
          SR_ERR_UNDECRYPTABLE);
    CHECK(sr_error_account(e, tmp_key, sizeof tmp_key));
    CHECK(memcmp(tmp_key, alice_key, 32) == 0);
    sr_error_free(e);
  }
  sr_envelopes_free(&out);
  CHECK(out.ptr == NULL && out.len == 0);
  send_text(bob, alice_key, "hi Alice", NOW + 2, &out);
  expect_message(alice, &out.ptr[0], "hi Alice", bob_key, alice_key);
  sr_envelopes_free(&out);

  /* -- restore from a backup: Alice's phone restores an older copy ---------- */
  OK(sr_memory_store_snapshot(store_a, &backup_a, &err));
  send_text(alice, bob_key, "after the backup", NOW + 3, &out);
  expect_message(bob, &out.ptr[0], "after the backup", alice_key, bob_key);
  sr_envelopes_free(&out);
  g = generation(alice);
  sr_device_free(alice);
  sr_store_free(store_a);
  {
    sr_device *none = (sr_device *)&g; /* overwritten with NULL on failure */
    FAILS(SR_ERR_ROLLED_BACK, sr_device_open(backup_a, key_a, 32, NULL, g, &none, &err));
    CHECK(none == NULL);
  }
  OK(sr_device_restore_from_backup(backup_a, key_a, 32, NULL, g, NOW + 4, &alice, &err));
  CHECK(generation(alice) > g);
  {
    sr_buffer failed;
    OK(sr_device_heal(alice, NOW + 5, &out, &failed, &err));
    CHECK(out.len == 1 && failed.len == 0);
    sr_buffer_free(&failed);
  }
  OK(sr_device_receive(bob, out.ptr[0].bytes.ptr, out.ptr[0].bytes.len, &r, &err));
  CHECK(r.kind == SR_CONTENT_HEAL && r.new_session && r.content.len == 0);
  sr_received_free(&r);
  sr_envelopes_free(&out);
  send_text(alice, bob_key, "healed", NOW + 6, &out);
  expect_message(bob, &out.ptr[0], "healed", alice_key, bob_key);
  sr_envelopes_free(&out);
  send_text(bob, alice_key, "indeed", NOW + 7, &out);
  expect_message(alice, &out.ptr[0], "indeed", bob_key, alice_key);
  sr_envelopes_free(&out);
  /* The restore replaced every prekey: publish the record again. */
  sr_buffer_free(&record_a);
  OK(sr_device_prekey_record(alice, &record_a, &err));

  /* -- a linked device over a store of C callbacks, SAS on both sides ------- */
  {
    c_store *cs = (c_store *)calloc(1, sizeof(c_store));
    sr_store_callbacks cb;
    sr_linking *linking;
    sr_link_approval *approval;
    sr_buffer request, response, payload, new_list, contacts, record_l, added;
    sr_sas sas_new, sas_old;
    sr_device_info laptop_info = info("Alice's laptop", SR_PLATFORM_DESKTOP);
    char *description;
    int i;
    if (cs == NULL) abort();
    cs->freed = &freed;
    cb.user_data = cs;
    cb.get = c_get;
    cb.commit = c_commit;
    cb.free_user_data = c_free;
    OK(sr_callback_store_new(&cb, &store_l, &err));

    OK(sr_linking_start(NULL, &laptop_info, &linking, &err));
    OK(sr_linking_request(linking, &request, &err));
    FAILS(SR_ERR_LINK_OUT_OF_ORDER, sr_linking_finish(linking, store_l, key_l, 32, request.ptr,
                                                       request.len, NOW, &laptop, NULL, &err));
    OK(sr_device_respond_to_link(alice, request.ptr, request.len, &approval, &response, &err));
    OK(sr_link_approval_description(approval, &description, &err));
    CHECK(strcmp(description, "Alice's laptop") == 0);
    sr_string_free(description);
    OK(sr_link_approval_sas(approval, &sas_old, &err));
    FAILS(SR_ERR_MALFORMED, sr_linking_receive_response(linking, request.ptr, request.len,
                                                        &sas_new, &err));
    OK(sr_linking_receive_response(linking, response.ptr, response.len, &sas_new, &err));
    /* The user compares the emoji on both screens. */
    CHECK(memcmp(sas_new.indices, sas_old.indices, SR_SAS_EXTENDED_LEN) == 0);
    if (verbose) printf("  SAS:");
    for (i = 0; i < SR_SAS_SHORT_LEN; i++) {
      CHECK(strcmp(sas_new.emoji[i], sas_old.emoji[i]) == 0 && strlen(sas_new.emoji[i]) > 0);
      CHECK(strcmp(sas_new.names[i], sas_old.names[i]) == 0 && strlen(sas_new.names[i]) > 0);
      if (verbose) printf(" %s %s", sas_new.emoji[i], sas_new.names[i]);
    }
    if (verbose) printf("\n");
    OK(sr_device_approve_link(alice, approval, NOW + 10, true, &payload, &new_list, &err));
    OK(sr_linking_finish(linking, store_l, key_l, 32, payload.ptr, payload.len, NOW + 10,
                         &laptop, &contacts, &err));
    CHECK(buf_eq(&contacts, bob_key, 32));
    sr_linking_free(linking);
    sr_store_free(store_l); /* the laptop keeps its reference */
    CHECK(!freed);
    {
      bool held = false;
      OK(sr_device_holds_account_key(laptop, &held, &err));
      CHECK(held);
      account_key(laptop, tmp_key);
      CHECK(memcmp(tmp_key, alice_key, 32) == 0);
    }
    device_id(laptop, laptop_id);
    /* The laptop takes the phone's bundle from the published record and
     * publishes the record with both; the phone and Bob take it. */
    OK(sr_device_update_contact(laptop, new_list.ptr, new_list.len, NULL, 0, record_a.ptr,
                                record_a.len, NULL, NULL, &err));
    OK(sr_device_prekey_record(laptop, &record_l, &err));
    OK(sr_device_update_contact(alice, new_list.ptr, new_list.len, NULL, 0, record_l.ptr,
                                record_l.len, NULL, NULL, &err));
    OK(sr_device_add_contact(laptop, bob_sid, list_b.ptr, list_b.len, record_b.ptr,
                             record_b.len, NULL, 0, &err));
    OK(sr_device_update_contact(bob, new_list.ptr, new_list.len, NULL, 0, record_l.ptr,
                                record_l.len, &added, NULL, &err));
    CHECK(buf_eq(&added, laptop_id, SR_DEVICE_ID_LEN));
    sr_buffer_free(&added);
    sr_buffer_free(&request);
    sr_buffer_free(&response);
    sr_buffer_free(&payload);
    sr_buffer_free(&contacts);
    sr_buffer_free(&record_l);
    sr_buffer_free(&list_a);
    list_a = new_list;

    /* The store's failure reaches the caller with the store's own message,
     * and nothing changed: the next call works. */
    cs->fail_next_commit = 1;
    FAILS(SR_ERR_STORE_FAILED, sr_device_send(laptop, bob_key, 32, (const uint8_t *)"x", 1,
                                              NOW + 11, &out, &err));
    {
      sr_error *e = NULL;
      cs->fail_next_commit = 1;
      sr_device_send(laptop, bob_key, 32, (const uint8_t *)"x", 1, NOW + 11, &out, &e);
      CHECK(strstr(sr_error_message(e), "disk full (test)") != NULL);
      sr_error_free(e);
    }
    /* A callback that calls back into its own device is refused, not UB. */
    cs->reenter = laptop;
    send_text(laptop, bob_key, "re-entered", NOW + 12, &out);
    CHECK(cs->reenter == NULL && cs->reenter_status == SR_ERR_HANDLE_IN_USE);
    expect_message(bob, &out.ptr[0], "re-entered", alice_key, bob_key);
    expect_message(alice, &out.ptr[0], "re-entered", alice_key, bob_key);
    sr_envelopes_free(&out);
  }

  /* -- fan-out: every message reaches every other device of both accounts -- */
  send_text(bob, alice_key, "to both", NOW + 20, &out);
  CHECK(mailboxes_are(&out.ptr[0], alice_key, NULL));
  expect_message(alice, &out.ptr[0], "to both", bob_key, alice_key);
  expect_message(laptop, &out.ptr[0], "to both", bob_key, alice_key);
  sr_envelopes_free(&out);
  send_text(alice, bob_key, "from the phone", NOW + 21, &out);
  CHECK(mailboxes_are(&out.ptr[0], bob_key, alice_key));
  expect_message(bob, &out.ptr[0], "from the phone", alice_key, bob_key);
  expect_message(laptop, &out.ptr[0], "from the phone", alice_key, bob_key); /* a copy */
  sr_envelopes_free(&out);
  send_text(laptop, bob_key, "from the laptop", NOW + 22, &out);
  expect_message(bob, &out.ptr[0], "from the laptop", alice_key, bob_key);
  expect_message(alice, &out.ptr[0], "from the laptop", alice_key, bob_key);
  sr_envelopes_free(&out);

  /* -- two processes on one memory store: Bob's app and its extension ------- */
  {
    sr_device *ext;
    OK(sr_device_open(store_b, key_b, 32, NULL, generation(bob), &ext, &err));
    send_text(alice, bob_key, "while the app sleeps", NOW + 30, &out);
    expect_message(ext, &out.ptr[0], "while the app sleeps", alice_key, bob_key);
    /* The app's cache is stale: its commit conflicts, it reloads and sees a
     * duplicate; it never decrypts (or sends from) the old state. */
    FAILS(SR_ERR_UNDECRYPTABLE,
          sr_device_receive(bob, out.ptr[0].bytes.ptr, out.ptr[0].bytes.len, &r, &err));
    sr_envelopes_free(&out);
    send_text(bob, alice_key, "from the app", NOW + 31, &out);
    expect_message(alice, &out.ptr[0], "from the app", bob_key, alice_key);
    expect_message(laptop, &out.ptr[0], "from the app", bob_key, alice_key);
    sr_envelopes_free(&out);
    send_text(ext, alice_key, "from the extension", NOW + 32, &out);
    expect_message(alice, &out.ptr[0], "from the extension", bob_key, alice_key);
    expect_message(laptop, &out.ptr[0], "from the extension", bob_key, alice_key);
    sr_envelopes_free(&out);
    sr_device_free(ext);
  }

  /* -- revocation: the laptop is removed; Bob stops writing to it ----------- */
  {
    sr_buffer revoked, removed;
    OK(sr_device_revoke(alice, laptop_id, sizeof laptop_id, NOW + 40, &revoked, &err));
    OK(sr_device_update_contact(bob, revoked.ptr, revoked.len, NULL, 0, NULL, 0, NULL, &removed,
                                &err));
    CHECK(buf_eq(&removed, laptop_id, SR_DEVICE_ID_LEN));
    sr_buffer_free(&removed);
    send_text(bob, alice_key, "after the revocation", NOW + 41, &out);
    expect_message(alice, &out.ptr[0], "after the revocation", bob_key, alice_key);
    FAILS(SR_ERR_NOT_A_RECIPIENT,
          sr_device_receive(laptop, out.ptr[0].bytes.ptr, out.ptr[0].bytes.len, &r, &err));
    CHECK(r.content.ptr == NULL);
    sr_envelopes_free(&out);
    /* Once the laptop holds the list that revokes it, it knows and stops. */
    OK(sr_device_update_contact(laptop, revoked.ptr, revoked.len, NULL, 0, NULL, 0, NULL, NULL,
                                &err));
    {
      bool is_revoked = false;
      OK(sr_device_is_revoked(laptop, &is_revoked, &err));
      CHECK(is_revoked);
    }
    FAILS(SR_ERR_THIS_DEVICE_REVOKED, sr_device_send(laptop, bob_key, 32, (const uint8_t *)"x",
                                                     1, NOW + 42, &out, &err));
    sr_buffer_free(&revoked);
    sr_device_free(laptop);
    CHECK(freed); /* the last reference to the callback store is gone */
  }

  /* -- export and import: Bob's app restarts and opens his store ------------ */
  g = generation(bob);
  sr_device_free(bob);
  send_text(alice, bob_key, "while Bob was away", NOW + 50, &out);
  FAILS(SR_ERR_ROLLED_BACK, sr_device_open(store_b, key_b, 32, NULL, g + 1, &bob, &err));
  FAILS(SR_ERR_WRONG_KEY, sr_device_open(store_b, key_a, 32, NULL, g, &bob, &err));
  OK(sr_device_open(store_b, key_b, 32, NULL, g, &bob, &err));
  CHECK(generation(bob) == g);
  expect_message(bob, &out.ptr[0], "while Bob was away", alice_key, bob_key);
  sr_envelopes_free(&out);

  /* -- prekey rotation -------------------------------------------------------- */
  {
    sr_buffer rotated;
    OK(sr_device_maintain(alice, NOW + 60, &rotated, &err));
    CHECK(rotated.len == 0); /* nothing due yet */
    OK(sr_device_maintain(alice, NOW + 8 * 24 * 3600, &rotated, &err));
    CHECK(rotated.len > 0); /* both rotated: publish the record */
    sr_buffer_free(&rotated);
  }

  /* -- restore the account from its recovery phrase, and from the seed ------ */
  OK(sr_recovery_phrase(seed.ptr, seed.len, &phrase, &err));
  {
    int words = 1;
    const char *c;
    sr_store *s1, *s2;
    sr_device *d1, *d2, *none;
    char *sid;
    for (c = phrase; *c; c++) words += *c == ' ';
    CHECK(words == 13);
    OK(sr_memory_store_new(&s1, &err));
    OK(sr_memory_store_new(&s2, &err));
    OK(sr_device_restore_account_from_phrase(s1, key_a, 32, NULL, phrase, list_a.ptr,
                                             list_a.len, &alice_info, NOW + 70, &d1, &err));
    OK(sr_device_session_id(d1, &sid, &err));
    CHECK(strcmp(sid, alice_sid) == 0);
    sr_string_free(sid);
    OK(sr_device_restore_account(s2, key_a, 32, NULL, seed.ptr, seed.len, NULL, 0, &alice_info,
                                 NOW + 70, &d2, &err));
    account_key(d2, tmp_key);
    CHECK(memcmp(tmp_key, alice_key, 32) == 0);
    FAILS(SR_ERR_PHRASE, sr_device_restore_account_from_phrase(
                             s1, key_a, 32, NULL, "not a recovery phrase", NULL, 0, &alice_info,
                             NOW, &none, &err));
    FAILS(SR_ERR_INVALID_ARGUMENT,
          sr_device_restore_account(s1, key_a, 32, NULL, seed.ptr, 15, NULL, 0, &alice_info,
                                    NOW, &none, &err));
    FAILS(SR_ERR_NOT_EMPTY_STORE,
          sr_device_restore_account(s2, key_a, 32, NULL, seed.ptr, seed.len, NULL, 0,
                                    &alice_info, NOW, &none, &err));
    sr_device_free(d1);
    sr_device_free(d2);
    sr_store_free(s1);
    sr_store_free(s2);
  }
  sr_string_free(phrase);

  /* -- migration from the single blob of spec 8.9 (the published fixture) --- */
  {
    char *json = read_file(fixture);
    size_t a_len = 0, b_len = 0, s_len = 0;
    uint8_t *a_blob, *b_blob, *a_seed;
    sr_store *ma_store, *mb_store;
    sr_device *ma, *mb;
    uint8_t mb_key[32], ma_key[32];
    if (json == NULL) fail(__LINE__, "reading the fixture", fixture);
    a_blob = json_hex(json, "alice_device", &a_len);
    b_blob = json_hex(json, "bob_device", &b_len);
    a_seed = json_hex(json, "alice_recovery_seed", &s_len);
    CHECK(a_blob && b_blob && a_seed && s_len == SR_RECOVERY_SEED_LEN);
    OK(sr_memory_store_new(&ma_store, &err));
    OK(sr_memory_store_new(&mb_store, &err));
    FAILS(SR_ERR_INVALID_ARGUMENT, sr_device_migrate(ma_store, key_a, 32, NULL, a_blob, a_len,
                                                     a_seed, 5, NOW, &ma, &err));
    FAILS(SR_ERR_MALFORMED, sr_device_migrate(ma_store, key_a, 32, NULL, a_blob, a_len / 2,
                                              a_seed, s_len, NOW, &ma, &err));
    OK(sr_device_migrate(ma_store, key_a, 32, NULL, a_blob, a_len, a_seed, s_len, NOW, &ma,
                         &err));
    OK(sr_device_migrate(mb_store, key_b, 32, NULL, b_blob, b_len, NULL, 0, NOW, &mb, &err));
    account_key(ma, ma_key);
    account_key(mb, mb_key);
    send_text(ma, mb_key, "after migration", NOW + 80, &out);
    expect_message(mb, &out.ptr[0], "after migration", ma_key, mb_key);
    sr_envelopes_free(&out);
    send_text(mb, ma_key, "and back", NOW + 81, &out);
    expect_message(ma, &out.ptr[0], "and back", mb_key, ma_key);
    sr_envelopes_free(&out);
    /* Both ends report the same active session; none with an unknown
       device or a stranger's account. */
    {
      uint8_t ha[SR_SESSION_HASH_LEN], hb[SR_SESSION_HASH_LEN], ida[32], idb[32];
      uint8_t stranger[32];
      bool found = false;
      device_id(ma, ida);
      device_id(mb, idb);
      OK(sr_device_active_session(ma, mb_key, 32, idb, 32, ha, sizeof ha, &found, &err));
      CHECK(found);
      found = false;
      OK(sr_device_active_session(mb, ma_key, 32, ida, 32, hb, sizeof hb, &found, &err));
      CHECK(found && memcmp(ha, hb, sizeof ha) == 0);
      memset(idb, 0x55, sizeof idb);
      OK(sr_device_active_session(ma, mb_key, 32, idb, 32, ha, sizeof ha, &found, &err));
      CHECK(!found);
      FAILS(SR_ERR_INVALID_ARGUMENT,
            sr_device_active_session(ma, mb_key, 31, idb, 32, ha, sizeof ha, &found, &err));
      FAILS(SR_ERR_INVALID_ARGUMENT,
            sr_device_active_session(ma, mb_key, 32, idb, 32, ha, 31, &found, &err));
      FAILS(SR_ERR_NULL_POINTER,
            sr_device_active_session(ma, mb_key, 32, idb, 32, ha, sizeof ha, NULL, &err));
      /* The main flow's Alice: a valid key, but no contact of this one. */
      memcpy(stranger, alice_key, sizeof stranger);
      found = true;
      OK(sr_device_active_session(ma, stranger, 32, ida, 32, ha, sizeof ha, &found, &err));
      CHECK(!found);
    }
    /* The encrypted form of the same blob migrates to the same device; a
       wrong or short blob key is refused and the store stays empty. */
    {
      size_t e_len = 0, k_len = 0;
      uint8_t *e_blob = json_hex(json, "alice_device_encrypted", &e_len);
      uint8_t *e_key = json_hex(json, "alice_device_encrypted_key", &k_len);
      uint8_t wrong[32], id1[32], id2[32], k2[32];
      sr_store *me_store;
      sr_device *me;
      size_t records = 99;
      CHECK(e_blob && e_key && k_len == 32);
      memset(wrong, 1, sizeof wrong);
      OK(sr_memory_store_new(&me_store, &err));
      FAILS(SR_ERR_SESSION_STATE,
            sr_device_migrate_encrypted(me_store, key_a, 32, NULL, e_blob, e_len, wrong, 32,
                                        a_seed, s_len, NOW, &me, &err));
      FAILS(SR_ERR_INVALID_ARGUMENT,
            sr_device_migrate_encrypted(me_store, key_a, 32, NULL, e_blob, e_len, e_key, 31,
                                        a_seed, s_len, NOW, &me, &err));
      FAILS(SR_ERR_NULL_POINTER,
            sr_device_migrate_encrypted(me_store, key_a, 32, NULL, e_blob, e_len, NULL, 32,
                                        a_seed, s_len, NOW, &me, &err));
      OK(sr_memory_store_len(me_store, &records, &err));
      CHECK(records == 0);
      OK(sr_device_migrate_encrypted(me_store, key_a, 32, NULL, e_blob, e_len, e_key, k_len,
                                     a_seed, s_len, NOW, &me, &err));
      device_id(ma, id1);
      device_id(me, id2);
      CHECK(memcmp(id1, id2, 32) == 0);
      account_key(me, k2);
      CHECK(memcmp(k2, ma_key, 32) == 0);
      sr_device_free(me);
      sr_store_free(me_store);
      free(e_blob);
      free(e_key);
    }
    /* The migrated Bob does not hold his account key. */
    {
      uint8_t id[32];
      sr_buffer list;
      device_id(ma, id);
      FAILS(SR_ERR_NO_ACCOUNT_KEY, sr_device_revoke(mb, id, 32, NOW, &list, &err));
      sr_link_approval *appr;
      FAILS(SR_ERR_NO_ACCOUNT_KEY, sr_device_respond_to_link(mb, id, 32, &appr, &list, &err));
      CHECK(appr == NULL);
    }
    sr_device_free(ma);
    sr_device_free(mb);
    sr_store_free(ma_store);
    sr_store_free(mb_store);
    free(a_blob);
    free(b_blob);
    free(a_seed);
    free(json);
  }

#ifdef SR_HAZMAT_TEST_VECTORS
  /* -- the seeded RNG (tests only): the same seed gives the same account ---- */
  {
    uint8_t rng_seed[SR_RNG_SEED_LEN];
    sr_rng *r1, *r2;
    sr_store *s1, *s2;
    sr_device *d1, *d2;
    sr_buffer k1, k2;
    uint8_t a1[32], a2[32];
    fill(rng_seed, sizeof rng_seed, 0x5E);
    OK(sr_rng_new_seeded(rng_seed, sizeof rng_seed, &r1, &err));
    OK(sr_rng_new_seeded(rng_seed, sizeof rng_seed, &r2, &err));
    sr_rng_free(r2);
    FAILS(SR_ERR_INVALID_ARGUMENT, sr_rng_new_seeded(rng_seed, 31, &r2, &err));
    OK(sr_memory_store_new(&s1, &err));
    OK(sr_memory_store_new(&s2, &err));
    OK(sr_device_create_account(s1, key_a, 32, r1, &alice_info, NOW, &d1, &k1, &err));
    CHECK(r2 == NULL); /* the failed call above set its output to NULL */
    OK(sr_rng_new_seeded(rng_seed, sizeof rng_seed, &r2, &err));
    OK(sr_device_create_account(s2, key_b, 32, r2, &alice_info, NOW, &d2, &k2, &err));
    account_key(d1, a1);
    account_key(d2, a2);
    CHECK(memcmp(a1, a2, 32) == 0 && k1.len == k2.len && memcmp(k1.ptr, k2.ptr, k1.len) == 0);
    sr_buffer_free(&k1);
    sr_buffer_free(&k2);
    sr_device_free(d1);
    sr_device_free(d2);
    sr_store_free(s1);
    sr_store_free(s2);
  }
#endif

  /* -- every error path with bad input --------------------------------------- */
  if (verbose) printf("error paths:\n");
  {
    sr_store *s, *empty;
    sr_device *d = NULL;
    sr_buffer b;
    uint8_t junk[300];
    sr_device_info bad = info("\xff\xfe not UTF-8", 0);
    sr_device_info no_name = info(NULL, 0);
    sr_rng *rng;
    size_t i;
    uint64_t out_g;
    for (i = 0; i < sizeof junk; i++) junk[i] = (uint8_t)(i * 7 + 3);

    /* NULL pointers: the message names the argument. */
    FAILS(SR_ERR_NULL_POINTER, sr_memory_store_new(NULL, &err));
    CHECK(sr_memory_store_new(NULL, NULL) == SR_ERR_NULL_POINTER); /* err may be NULL */
    FAILS(SR_ERR_NULL_POINTER, sr_device_generation(NULL, &out_g, &err));
    FAILS(SR_ERR_NULL_POINTER, sr_device_generation(alice, NULL, &err));
    FAILS(SR_ERR_NULL_POINTER, sr_device_open(NULL, key_a, 32, NULL, 0, &d, &err));
    FAILS(SR_ERR_NULL_POINTER, sr_device_open(store_b, NULL, 32, NULL, 0, &d, &err));
    FAILS(SR_ERR_NULL_POINTER, sr_device_send(alice, NULL, 32, junk, 1, NOW, &out, &err));
    FAILS(SR_ERR_NULL_POINTER, sr_device_send(alice, bob_key, 32, NULL, 5, NOW, &out, &err));
    FAILS(SR_ERR_NULL_POINTER, sr_device_receive(alice, junk, 10, NULL, &err));
    FAILS(SR_ERR_NULL_POINTER, sr_device_add_contact(alice, NULL, list_b.ptr, list_b.len, NULL,
                                                     0, NULL, 0, &err));
    FAILS(SR_ERR_NULL_POINTER, sr_device_approve_link(alice, NULL, NOW, true, &b, &b, &err));
    FAILS(SR_ERR_NULL_POINTER, sr_callback_store_new(NULL, &s, &err));
    {
      sr_store_callbacks cb;
      memset(&cb, 0, sizeof cb);
      cb.get = c_get;
      FAILS(SR_ERR_NULL_POINTER, sr_callback_store_new(&cb, &s, &err));
    }
    OK(sr_memory_store_new(&empty, &err));
    FAILS(SR_ERR_NULL_POINTER, sr_device_create_account(empty, key_a, 32, NULL, NULL, NOW, &d,
                                                        &b, &err));
    FAILS(SR_ERR_NULL_POINTER, sr_device_create_account(empty, key_a, 32, NULL, &no_name, NOW,
                                                        &d, &b, &err));
    FAILS(SR_ERR_NULL_POINTER, sr_store_reply_value(NULL, junk, 1, &err));
    CHECK(strlen(sr_error_message(NULL)) > 0 && sr_error_code(NULL) == SR_ERR_INVALID_HANDLE);
    CHECK(!sr_error_account(NULL, tmp_key, 32));
    sr_error_free(NULL);
    sr_buffer_free(NULL);
    sr_string_free(NULL);
    sr_envelopes_free(NULL);
    sr_received_free(NULL);
    sr_device_free(NULL);
    sr_store_free(NULL);
    sr_rng_free(NULL);
    sr_linking_free(NULL);
    sr_link_approval_free(NULL);

    /* Wrong lengths: the message gives the expected one. */
    FAILS(SR_ERR_INVALID_ARGUMENT, sr_device_open(store_b, key_b, 31, NULL, 0, &d, &err));
    FAILS(SR_ERR_INVALID_ARGUMENT, sr_device_open(store_b, key_b, 33, NULL, 0, &d, &err));
    FAILS(SR_ERR_INVALID_ARGUMENT, sr_device_send(alice, bob_key, 31, junk, 1, NOW, &out, &err));
    FAILS(SR_ERR_INVALID_ARGUMENT, sr_device_id(alice, tmp_key, 31, &err));
    FAILS(SR_ERR_INVALID_ARGUMENT, sr_device_account_key(alice, tmp_key, 33, &err));
    FAILS(SR_ERR_INVALID_ARGUMENT, sr_device_revoke(alice, laptop_id, 16, NOW, &b, &err));
    FAILS(SR_ERR_INVALID_ARGUMENT, sr_recovery_phrase(seed.ptr, 17, &phrase, &err));
    FAILS(SR_ERR_SESSION_ID, sr_device_add_contact_bytes(alice, sid_bytes, 32, list_b.ptr,
                                                         list_b.len, NULL, 0, NULL, 0, &err));
    FAILS(SR_ERR_INVALID_ARGUMENT, sr_device_add_contact(alice, bob_sid, list_b.ptr, list_b.len,
                                                         NULL, 0, tmp_key, 16, &err));
    FAILS(SR_ERR_INVALID_ARGUMENT, sr_device_update_contact(alice, list_b.ptr, list_b.len, NULL,
                                                            0, NULL, 7, NULL, NULL, &err));
    {
      uint8_t big[SR_MAX_CONTENT_LEN + 1];
      memset(big, 'x', sizeof big);
      FAILS(SR_ERR_CONTENT_TOO_LONG,
            sr_device_send(alice, bob_key, 32, big, sizeof big, NOW + 90, &out, &err));
    }

    /* Garbage bytes, truncated and altered input. */
    FAILS(SR_ERR_INVALID_ARGUMENT, sr_device_send(alice, junk, 32, junk, 1, NOW, &out, &err));
    FAILS(SR_ERR_MALFORMED, sr_device_receive(alice, junk, sizeof junk, &r, &err));
    FAILS(SR_ERR_MALFORMED, sr_device_receive(alice, NULL, 0, &r, &err));
    send_text(bob, alice_key, "to be damaged", NOW + 91, &out);
    {
      sr_envelope *e = &out.ptr[0];
      sr_error *er = NULL;
      sr_status st = sr_device_receive(alice, e->bytes.ptr, e->bytes.len - 1, &r, &er);
      CHECK(st != SR_OK && er != NULL && sr_error_code(er) == st);
      if (verbose) printf("  %-28s %s (truncated envelope)\n", sr_status_name(st), sr_error_message(er));
      sr_error_free(er);
      e->bytes.ptr[10] ^= 0x40; /* inside E, the header every slot is bound to */
      er = NULL;
      st = sr_device_receive(alice, e->bytes.ptr, e->bytes.len, &r, &er);
      CHECK(st != SR_OK && er != NULL && sr_error_code(er) == st);
      if (verbose) printf("  %-28s %s (altered envelope)\n", sr_status_name(st), sr_error_message(er));
      sr_error_free(er);
      e->bytes.ptr[10] ^= 0x40; /* inside E, the header every slot is bound to */
      expect_message(alice, e, "to be damaged", bob_key, alice_key); /* unchanged state */
    }
    sr_envelopes_free(&out);
    /* Pseudo-random bytes that start like each wire object (version 0x01
     * and a type byte), fed to every parser: refused with an error, never
     * a crash (the sanitizer and valgrind runs watch every read). */
    {
      uint32_t x = 12345u;
      int round;
      sr_linking *probe;
      sr_device_info probe_info = info("probe", 0);
      OK(sr_linking_start(NULL, &probe_info, &probe, &err));
      for (round = 0; round < 64; round++) {
        size_t n = 2 + (size_t)(round * 37) % (sizeof junk - 2);
        sr_error *e1 = NULL, *e2 = NULL, *e3 = NULL, *e4 = NULL, *e5 = NULL;
        sr_link_approval *a = NULL;
        sr_sas sas;
        for (i = 0; i < n; i++) {
          x = x * 1103515245u + 12345u;
          junk[i] = (uint8_t)(x >> 16);
        }
        junk[0] = 0x01;
        junk[1] = (uint8_t)round;
        CHECK(sr_device_receive(alice, junk, n, &r, &e1) != SR_OK && e1 != NULL);
        CHECK(sr_device_add_contact(alice, bob_sid, junk, n, NULL, 0, NULL, 0, &e2) != SR_OK);
        CHECK(sr_device_update_contact(alice, list_b.ptr, list_b.len, NULL, 0, junk, n, NULL,
                                       NULL, &e3) != SR_OK);
        CHECK(sr_device_respond_to_link(alice, junk, n, &a, &b, &e4) != SR_OK && a == NULL);
        CHECK(sr_linking_receive_response(probe, junk, n, &sas, &e5) != SR_OK);
        sr_error_free(e1);
        sr_error_free(e2);
        sr_error_free(e3);
        sr_error_free(e4);
        sr_error_free(e5);
      }
      sr_linking_free(probe);
      for (i = 0; i < sizeof junk; i++) junk[i] = (uint8_t)(i * 7 + 3);
    }
    FAILS(SR_ERR_SESSION_ID, sr_device_add_contact(alice, "05zz", list_b.ptr, list_b.len, NULL,
                                                   0, NULL, 0, &err));
    FAILS(SR_ERR_MALFORMED, sr_device_add_contact(alice, bob_sid, junk, sizeof junk, NULL, 0,
                                                  NULL, 0, &err));
    FAILS(SR_ERR_DEVICE_LIST, sr_device_add_contact(alice, bob_sid, list_a.ptr, list_a.len, NULL,
                                                    0, NULL, 0, &err)); /* not Bob's list */
    FAILS(SR_ERR_MALFORMED, sr_device_add_contact(alice, bob_sid, list_b.ptr, list_b.len, junk,
                                                  sizeof junk, NULL, 0, &err));
    FAILS(SR_ERR_MALFORMED, sr_device_update_contact(alice, junk, 40, NULL, 0, NULL, 0, NULL,
                                                     NULL, &err));
    FAILS(SR_ERR_NULL_POINTER, sr_device_respond_to_link(alice, junk, sizeof junk, NULL, &b, &err));
    {
      sr_link_approval *a = NULL;
      FAILS(SR_ERR_MALFORMED, sr_device_respond_to_link(alice, junk, sizeof junk, &a, &b, &err));
      CHECK(a == NULL && b.ptr == NULL);
    }
    FAILS(SR_ERR_INVALID_ARGUMENT, sr_device_create_account(empty, key_a, 32, NULL, &bad, NOW,
                                                            &d, &b, &err)); /* not UTF-8 */

    /* A handle of the wrong type is refused. */
    FAILS(SR_ERR_INVALID_HANDLE, sr_device_generation((const sr_device *)store_b, &out_g, &err));
    FAILS(SR_ERR_INVALID_HANDLE, sr_device_open((const sr_store *)alice, key_a, 32, NULL, 0, &d,
                                                &err));
    OK(sr_rng_new_os(&rng, &err));
    sr_rng_free(rng);
    FAILS(SR_ERR_INVALID_HANDLE, sr_device_open(store_b, key_b, 32, (sr_rng *)store_b, 0, &d,
                                                &err));
    {
      /* Snapshots are for memory stores only. */
      int cfreed = 0;
      c_store *cs = (c_store *)calloc(1, sizeof(c_store));
      sr_store_callbacks cb;
      sr_store *callback_store;
      size_t n;
      if (cs == NULL) abort();
      cs->freed = &cfreed;
      cb.user_data = cs;
      cb.get = c_get;
      cb.commit = c_commit;
      cb.free_user_data = c_free;
      OK(sr_callback_store_new(&cb, &callback_store, &err));
      FAILS(SR_ERR_INVALID_ARGUMENT, sr_memory_store_snapshot(callback_store, &s, &err));
      CHECK(s == NULL);
      FAILS(SR_ERR_INVALID_ARGUMENT, sr_memory_store_len(callback_store, &n, &err));
      sr_store_free(callback_store);
      CHECK(cfreed);
    }

    /* The store's state. */
    FAILS(SR_ERR_EMPTY_STORE, sr_device_open(empty, key_a, 32, NULL, 0, &d, &err));
    CHECK(d == NULL);
    FAILS(SR_ERR_NOT_EMPTY_STORE, sr_device_create_account(store_b, key_b, 32, NULL, &bob_info,
                                                           NOW, &d, &b, &err));
    CHECK(d == NULL && b.ptr == NULL);
    FAILS(SR_ERR_WRONG_KEY, sr_device_open(store_b, key_l, 32, NULL, 0, &d, &err));
    {
      size_t n = 0;
      OK(sr_memory_store_len(empty, &n, &err));
      CHECK(n == 0);
    }

    /* Sessions: an account that is not a contact. */
    {
      sr_store *cs;
      sr_device *carol;
      uint8_t carol_key[32];
      sr_error *e = NULL;
      OK(sr_memory_store_new(&cs, &err));
      OK(sr_device_create_account(cs, key_l, 32, NULL, &bob_info, NOW, &carol, &b, &err));
      sr_buffer_free(&b);
      account_key(carol, carol_key);
      FAILS(SR_ERR_UNKNOWN_ACCOUNT, sr_device_send(alice, carol_key, 32, junk, 1, NOW + 92, &out,
                                                   &err));
      CHECK(sr_device_send(alice, carol_key, 32, junk, 1, NOW + 92, &out, &e) ==
            SR_ERR_UNKNOWN_ACCOUNT);
      CHECK(sr_error_account(e, tmp_key, sizeof tmp_key));
      CHECK(memcmp(tmp_key, carol_key, 32) == 0);
      CHECK(!sr_error_account(e, tmp_key, 31));
      sr_error_free(e);
      /* Carol adds Alice without her prekey record: no bundle to start with. */
      OK(sr_device_add_contact(carol, alice_sid, list_a.ptr, list_a.len, NULL, 0, NULL, 0,
                               &err));
      FAILS(SR_ERR_MISSING_PREKEYS, sr_device_send(carol, alice_key, 32, junk, 1, NOW + 93,
                                                   &out, &err));
      sr_device_free(carol);
      sr_store_free(cs);
    }
    sr_store_free(empty);
  }

  /* -- clean up -------------------------------------------------------------- */
  sr_buffer_free(&seed);
  sr_buffer_free(&list_a);
  sr_buffer_free(&list_b);
  sr_buffer_free(&record_a);
  sr_buffer_free(&record_b);
  sr_string_free(alice_sid);
  sr_string_free(bob_sid);
  sr_device_free(alice);
  sr_device_free(bob);
  sr_store_free(backup_a);
  sr_store_free(store_b);
  printf("flow.c: %d checks passed\n", checks);
  return 0;
}
