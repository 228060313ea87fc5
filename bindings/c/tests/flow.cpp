// The whole flow of the device object through the C ABI, from C++17, in the
// style of a libsession-util caller: RAII owners for every handle and
// buffer, std::vector<unsigned char> for bytes, and errors as exceptions
// carrying the library's status code (with an expected-style `attempt` for
// calls whose failure is an answer, not an accident).
//
// Two accounts, a device linked without the account key (SAS compared on
// both sides), fan-out to every device of both accounts, the two-process
// case on one memory store (one device moved to another thread, and a
// second thread hammering a handle in use), revocation, reopening from the
// store, restore from a backup, and the error paths with bad input.
//
// Exits 0 when every check passed; prints "flow.cpp: N checks passed".
#include "session_ratchet.h"

#include <array>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <variant>
#include <vector>

namespace sr {

using ustring = std::vector<unsigned char>;

/// A failed call: the library's status code and message.
class Error : public std::runtime_error {
 public:
  Error(sr_status code, const std::string& message)
      : std::runtime_error(std::string(sr_status_name(code)) + ": " + message), code_(code) {}
  sr_status code() const noexcept { return code_; }

 private:
  sr_status code_;
};

namespace detail {
struct ErrorSlot {
  sr_error* err = nullptr;
  ~ErrorSlot() { sr_error_free(err); }
  sr_error** operator&() noexcept { return &err; }
};

inline void check(sr_status status, const ErrorSlot& slot) {
  if (status != SR_OK) throw Error(status, sr_error_message(slot.err));
}

/// Calls `f(sr_error **)` and throws on failure.
template <class F>
void call(F&& f) {
  ErrorSlot slot;
  check(f(&slot), slot);
}

struct BufferOwner {
  sr_buffer b{nullptr, 0};
  ~BufferOwner() { sr_buffer_free(&b); }
  ustring take() {
    ustring out(b.ptr, b.ptr + b.len);
    sr_buffer_free(&b);
    return out;
  }
};

struct StringOwner {
  char* s = nullptr;
  ~StringOwner() { sr_string_free(s); }
};

template <class T, void (*Free)(T*)>
struct Deleter {
  void operator()(T* p) const noexcept { Free(p); }
};

template <class T, void (*Free)(T*)>
using Owned = std::unique_ptr<T, Deleter<T, Free>>;

inline std::vector<ustring> split(const ustring& joined, size_t width) {
  std::vector<ustring> out;
  for (size_t i = 0; i + width <= joined.size(); i += width)
    out.emplace_back(joined.begin() + i, joined.begin() + i + width);
  return out;
}
}  // namespace detail

/// Like std::expected<T, Error>: a value or the error of a call that may
/// fail as part of normal operation.
template <class T>
class Expected {
 public:
  Expected(T value) : v_(std::move(value)) {}
  Expected(Error error) : v_(std::move(error)) {}
  bool has_value() const { return v_.index() == 0; }
  T& value() { return std::get<0>(v_); }
  const Error& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

template <class F>
auto attempt(F&& f) -> Expected<decltype(f())> {
  try {
    return f();
  } catch (const Error& e) {
    return e;
  }
}

struct Envelope {
  ustring bytes;
  std::vector<ustring> mailboxes;
};

struct Message {
  ustring sender, sender_device, conversation;
  uint8_t kind;
  bool new_session;
  ustring content;
  std::string text() const { return std::string(content.begin(), content.end()); }
};

struct Sas {
  std::array<uint8_t, SR_SAS_EXTENDED_LEN> indices{};
  std::vector<std::string> emoji, names;  // the SR_SAS_SHORT_LEN shown
  static Sas from(const sr_sas& s) {
    Sas out;
    std::memcpy(out.indices.data(), s.indices, SR_SAS_EXTENDED_LEN);
    for (int i = 0; i < SR_SAS_SHORT_LEN; i++) {
      out.emoji.emplace_back(s.emoji[i]);
      out.names.emplace_back(s.names[i]);
    }
    return out;
  }
  bool operator==(const Sas& o) const {
    return indices == o.indices && emoji == o.emoji && names == o.names;
  }
};

inline std::vector<Envelope> envelopes(sr_envelopes& e) {
  std::vector<Envelope> out;
  for (size_t i = 0; i < e.len; i++) {
    const sr_envelope& x = e.ptr[i];
    ustring boxes(x.mailboxes.ptr, x.mailboxes.ptr + x.mailboxes.len);
    out.push_back({ustring(x.bytes.ptr, x.bytes.ptr + x.bytes.len),
                   detail::split(boxes, SR_ACCOUNT_KEY_LEN)});
  }
  sr_envelopes_free(&e);
  return out;
}

class Store {
 public:
  static Store memory() {
    sr_store* s = nullptr;
    detail::call([&](sr_error** err) { return sr_memory_store_new(&s, err); });
    return Store(s);
  }
  /// A copy as it is now: open it later as a restored backup.
  Store snapshot() const {
    sr_store* s = nullptr;
    detail::call([&](sr_error** err) { return sr_memory_store_snapshot(get(), &s, err); });
    return Store(s);
  }
  const sr_store* get() const { return h_.get(); }
  void reset() { h_.reset(); }

 private:
  friend struct MapStore;
  explicit Store(sr_store* s) : h_(s) {}
  detail::Owned<sr_store, sr_store_free> h_;
};

/// A record store over a std::map, through the callback interface (what
/// a client does over SQLite). `on_commit` runs at the start of every
/// commit (a test hook).
struct MapStore {
  std::map<ustring, ustring> records;
  std::function<void()> on_commit;
  bool released = false;

  static int32_t get(void* user, const uint8_t* key, size_t key_len, sr_store_reply* reply) {
    auto* self = static_cast<MapStore*>(user);
    auto it = self->records.find(ustring(key, key + key_len));
    if (it != self->records.end() &&
        sr_store_reply_value(reply, it->second.data(), it->second.size(), nullptr) != SR_OK)
      return 1;
    return 0;
  }
  static int32_t commit(void* user, const uint8_t* head, size_t head_len, const uint8_t* expected,
                        size_t expected_len, const sr_record_write* writes, size_t writes_len,
                        sr_store_reply*) {
    auto* self = static_cast<MapStore*>(user);
    if (self->on_commit) self->on_commit();
    auto it = self->records.find(ustring(head, head + head_len));
    bool matches = expected == nullptr
                       ? it == self->records.end()
                       : it != self->records.end() &&
                             it->second == ustring(expected, expected + expected_len);
    if (!matches) return SR_COMMIT_CONFLICT;
    std::map<ustring, ustring> next = self->records;  // all or nothing
    for (size_t i = 0; i < writes_len; i++) {
      ustring k(writes[i].key, writes[i].key + writes[i].key_len);
      if (writes[i].op == SR_WRITE_PUT)
        next[k] = ustring(writes[i].value, writes[i].value + writes[i].value_len);
      else
        next.erase(k);
    }
    self->records.swap(next);
    return SR_COMMIT_COMMITTED;
  }
  static void release(void* user) { static_cast<MapStore*>(user)->released = true; }

  /// A store handle over this map (which must outlive every device on it).
  Store handle() {
    sr_store_callbacks cb{this, &MapStore::get, &MapStore::commit, &MapStore::release};
    sr_store* s = nullptr;
    detail::call([&](sr_error** err) { return sr_callback_store_new(&cb, &s, err); });
    return Store(s);
  }
};

class Device;

class LinkApproval {
 public:
  Sas sas() const {
    sr_sas s;
    detail::call([&](sr_error** err) { return sr_link_approval_sas(h_.get(), &s, err); });
    return Sas::from(s);
  }
  std::string description() const {
    detail::StringOwner s;
    detail::call(
        [&](sr_error** err) { return sr_link_approval_description(h_.get(), &s.s, err); });
    return s.s;
  }

 private:
  friend class Device;
  explicit LinkApproval(sr_link_approval* a) : h_(a) {}
  detail::Owned<sr_link_approval, sr_link_approval_free> h_;
};

struct Approved {
  ustring payload, device_list;
};

struct ListChange {
  std::vector<ustring> added, removed;
};

class Device {
 public:
  static std::pair<Device, ustring> create_account(const Store& store, const ustring& key,
                                                   const char* name, uint64_t now) {
    sr_device* d = nullptr;
    detail::BufferOwner seed;
    sr_device_info info{SR_PLATFORM_ANDROID, name, 2, 0, 0};
    detail::call([&](sr_error** err) {
      return sr_device_create_account(store.get(), key.data(), key.size(), nullptr, &info, now,
                                      &d, &seed.b, err);
    });
    return {Device(d), seed.take()};
  }
  static Device open(const Store& store, const ustring& key, uint64_t min_generation) {
    sr_device* d = nullptr;
    detail::call([&](sr_error** err) {
      return sr_device_open(store.get(), key.data(), key.size(), nullptr, min_generation, &d,
                            err);
    });
    return Device(d);
  }
  static Device restore_from_backup(const Store& store, const ustring& key,
                                    uint64_t min_generation, uint64_t now) {
    sr_device* d = nullptr;
    detail::call([&](sr_error** err) {
      return sr_device_restore_from_backup(store.get(), key.data(), key.size(), nullptr,
                                           min_generation, now, &d, err);
    });
    return Device(d);
  }

  uint64_t generation() const {
    uint64_t g = 0;
    detail::call([&](sr_error** err) { return sr_device_generation(get(), &g, err); });
    return g;
  }
  ustring account_key() const {
    ustring k(SR_ACCOUNT_KEY_LEN);
    detail::call(
        [&](sr_error** err) { return sr_device_account_key(get(), k.data(), k.size(), err); });
    return k;
  }
  ustring device_id() const {
    ustring k(SR_DEVICE_ID_LEN);
    detail::call([&](sr_error** err) { return sr_device_id(get(), k.data(), k.size(), err); });
    return k;
  }
  std::string session_id() const {
    detail::StringOwner s;
    detail::call([&](sr_error** err) { return sr_device_session_id(get(), &s.s, err); });
    return s.s;
  }
  bool holds_account_key() const {
    bool b = false;
    detail::call([&](sr_error** err) { return sr_device_holds_account_key(get(), &b, err); });
    return b;
  }
  ustring device_list() const {
    detail::BufferOwner b;
    detail::call([&](sr_error** err) { return sr_device_device_list(get(), &b.b, err); });
    return b.take();
  }
  ustring prekey_record() {
    detail::BufferOwner b;
    detail::call([&](sr_error** err) { return sr_device_prekey_record(get(), &b.b, err); });
    return b.take();
  }
  std::vector<ustring> contacts() const {
    detail::BufferOwner b;
    detail::call([&](sr_error** err) { return sr_device_contacts(get(), &b.b, err); });
    return detail::split(b.take(), SR_ACCOUNT_KEY_LEN);
  }
  ustring add_contact(const std::string& session_id, const ustring& list,
                      const std::optional<ustring>& record) {
    ustring account(SR_ACCOUNT_KEY_LEN);
    detail::call([&](sr_error** err) {
      return sr_device_add_contact(get(), session_id.c_str(), list.data(), list.size(),
                                   record ? record->data() : nullptr, record ? record->size() : 0,
                                   account.data(), account.size(), err);
    });
    return account;
  }
  ListChange update_contact(const ustring& list, const std::vector<ustring>& intermediates,
                            const std::optional<ustring>& record) {
    std::vector<sr_slice> between;
    for (const auto& l : intermediates) between.push_back({l.data(), l.size()});
    detail::BufferOwner added, removed;
    detail::call([&](sr_error** err) {
      return sr_device_update_contact(get(), list.data(), list.size(), between.data(),
                                      between.size(), record ? record->data() : nullptr,
                                      record ? record->size() : 0, &added.b, &removed.b, err);
    });
    return {detail::split(added.take(), SR_DEVICE_ID_LEN),
            detail::split(removed.take(), SR_DEVICE_ID_LEN)};
  }
  std::vector<Envelope> send(const ustring& conversation, std::string_view text, uint64_t now) {
    sr_envelopes out{nullptr, 0};
    detail::call([&](sr_error** err) {
      return sr_device_send(get(), conversation.data(), conversation.size(),
                            reinterpret_cast<const uint8_t*>(text.data()), text.size(), now, &out,
                            err);
    });
    return envelopes(out);
  }
  Message receive(const ustring& envelope) {
    sr_received r;
    detail::ErrorSlot slot;
    sr_status st = sr_device_receive(get(), envelope.data(), envelope.size(), &r, &slot);
    if (st != SR_OK) {
      sr_received_free(&r);  // empty after a failure; freeing is safe
      detail::check(st, slot);
    }
    Message m{ustring(r.sender, r.sender + SR_ACCOUNT_KEY_LEN),
              ustring(r.sender_device, r.sender_device + SR_DEVICE_ID_LEN),
              ustring(r.conversation, r.conversation + SR_ACCOUNT_KEY_LEN),
              r.kind,
              r.new_session,
              ustring(r.content.ptr, r.content.ptr + r.content.len)};
    sr_received_free(&r);
    return m;
  }
  /// The healing notices to post, and the accounts that could not be healed.
  std::pair<std::vector<Envelope>, std::vector<ustring>> heal(uint64_t now) {
    sr_envelopes out{nullptr, 0};
    detail::BufferOwner failed;
    detail::call([&](sr_error** err) { return sr_device_heal(get(), now, &out, &failed.b, err); });
    auto sent = envelopes(out);
    return {std::move(sent), detail::split(failed.take(), SR_ACCOUNT_KEY_LEN)};
  }
  ustring revoke(const ustring& device, uint64_t now) {
    detail::BufferOwner b;
    detail::call([&](sr_error** err) {
      return sr_device_revoke(get(), device.data(), device.size(), now, &b.b, err);
    });
    return b.take();
  }
  std::pair<LinkApproval, ustring> respond_to_link(const ustring& request) {
    sr_link_approval* a = nullptr;
    detail::BufferOwner response;
    detail::call([&](sr_error** err) {
      return sr_device_respond_to_link(get(), request.data(), request.size(), &a, &response.b,
                                       err);
    });
    return {LinkApproval(a), response.take()};
  }
  Approved approve_link(LinkApproval approval, uint64_t now, bool share_account_key) {
    detail::BufferOwner payload, list;
    sr_link_approval* a = approval.h_.release();  // taken by the call, whatever the result
    detail::call([&](sr_error** err) {
      return sr_device_approve_link(get(), a, now, share_account_key, &payload.b, &list.b, err);
    });
    return {payload.take(), list.take()};
  }

  sr_device* get() const { return h_.get(); }
  explicit Device(sr_device* d) : h_(d) {}

 private:
  detail::Owned<sr_device, sr_device_free> h_;
};

class Linking {
 public:
  explicit Linking(const char* name) {
    sr_linking* l = nullptr;
    sr_device_info info{SR_PLATFORM_DESKTOP, name, 2, 0, 0};
    detail::call([&](sr_error** err) { return sr_linking_start(nullptr, &info, &l, err); });
    h_.reset(l);
  }
  ustring request() const {
    detail::BufferOwner b;
    detail::call([&](sr_error** err) { return sr_linking_request(h_.get(), &b.b, err); });
    return b.take();
  }
  Sas receive_response(const ustring& response) {
    sr_sas s;
    detail::call([&](sr_error** err) {
      return sr_linking_receive_response(h_.get(), response.data(), response.size(), &s, err);
    });
    return Sas::from(s);
  }
  std::pair<Device, std::vector<ustring>> finish(const Store& store, const ustring& key,
                                                 const ustring& payload, uint64_t now) {
    sr_device* d = nullptr;
    detail::BufferOwner contacts;
    detail::call([&](sr_error** err) {
      return sr_linking_finish(h_.get(), store.get(), key.data(), key.size(), payload.data(),
                               payload.size(), now, &d, &contacts.b, err);
    });
    return {Device(d), detail::split(contacts.take(), SR_ACCOUNT_KEY_LEN)};
  }

 private:
  detail::Owned<sr_linking, sr_linking_free> h_;
};

}  // namespace sr

// ---- the test -----------------------------------------------------------------

static int checks = 0;
static bool verbose = true;

#define CHECK(cond)                                                                 \
  do {                                                                              \
    checks++;                                                                       \
    if (!(cond)) {                                                                  \
      std::fprintf(stderr, "flow.cpp:%d: FAILED: %s\n", __LINE__, #cond);           \
      std::exit(1);                                                                 \
    }                                                                               \
  } while (0)

/// `expr` must throw sr::Error with `code` and a message.
#define THROWS(want, expr)                                                          \
  do {                                                                              \
    checks++;                                                                       \
    try {                                                                           \
      (void)(expr);                                                                 \
      std::fprintf(stderr, "flow.cpp:%d: FAILED: no error from %s\n", __LINE__, #expr); \
      std::exit(1);                                                                 \
    } catch (const sr::Error& e) {                                                  \
      if (e.code() != (want) || std::strlen(e.what()) < 20) {                       \
        std::fprintf(stderr, "flow.cpp:%d: FAILED: %s: %s\n", __LINE__, #expr, e.what()); \
        std::exit(1);                                                               \
      }                                                                             \
      if (verbose) std::printf("  %s\n", e.what());                                 \
    }                                                                               \
  } while (0)

/// A raw C call that must fail with `code` (for arguments no wrapper passes).
#define C_FAILS(want, call)                                                         \
  do {                                                                              \
    sr_error* err = nullptr;                                                        \
    sr_status st_ = (call);                                                         \
    checks++;                                                                       \
    if (st_ != (want) || sr_error_code(err) != (want)) {                            \
      std::fprintf(stderr, "flow.cpp:%d: FAILED: %s gave %s: %s\n", __LINE__, #call, \
                   sr_status_name(st_), sr_error_message(err));                     \
      std::exit(1);                                                                 \
    }                                                                               \
    if (verbose) std::printf("  %s: %s\n", sr_status_name(st_), sr_error_message(err)); \
    sr_error_free(err);                                                             \
  } while (0)

using sr::ustring;
static const uint64_t NOW = 1767225600u;

static ustring key(unsigned char v) { return ustring(SR_STORAGE_KEY_LEN, v); }

static void deliver(sr::Device& to, const sr::Envelope& e, std::string_view text,
                    const ustring& sender) {
  sr::Message m = to.receive(e.bytes);
  CHECK(m.text() == text);
  CHECK(m.sender == sender);
  CHECK(m.kind == SR_CONTENT_MESSAGE);
}

static void run() {
  auto store_a = sr::Store::memory();
  auto store_b = sr::Store::memory();
  // (No structured bindings for devices: C++17 lambdas cannot capture them.)
  auto created_a = sr::Device::create_account(store_a, key(1), "Alice's phone", NOW);
  auto created_b = sr::Device::create_account(store_b, key(2), "Bob's phone", NOW);
  sr::Device alice = std::move(created_a.first), bob = std::move(created_b.first);
  const ustring alice_seed = created_a.second, bob_seed = created_b.second;
  CHECK(alice_seed.size() == SR_RECOVERY_SEED_LEN && bob_seed != alice_seed);
  const ustring alice_key = alice.account_key(), bob_key = bob.account_key();

  // Each fetches the other's list and prekey record by Session ID.
  CHECK(alice.add_contact(bob.session_id(), bob.device_list(), bob.prekey_record()) == bob_key);
  CHECK(bob.add_contact(alice.session_id(), alice.device_list(), alice.prekey_record()) ==
        alice_key);
  CHECK(bob.contacts() == std::vector<ustring>{alice_key});
  auto out = alice.send(bob_key, "hello from C++", NOW + 1);
  CHECK(out.size() == 1 && out[0].mailboxes == std::vector<ustring>{bob_key});
  {
    sr::Message m = bob.receive(out[0].bytes);
    CHECK(m.new_session && m.text() == "hello from C++" && m.conversation == bob_key);
  }
  // A duplicate is an expected outcome: handle it without exceptions.
  auto again = sr::attempt([&] { return bob.receive(out[0].bytes); });
  CHECK(!again.has_value() && again.error().code() == SR_ERR_UNDECRYPTABLE);
  deliver(alice, bob.send(alice_key, "hi", NOW + 2)[0], "hi", bob_key);

  // ---- a second device for Alice, linked without the account key --------------
  const ustring published = alice.prekey_record();
  sr::MapStore tablet_db;  // outlives the tablet
  auto store_l = tablet_db.handle();
  sr::Linking linking("Alice's tablet");
  auto responded = alice.respond_to_link(linking.request());
  sr::LinkApproval approval = std::move(responded.first);
  const ustring response = responded.second;
  CHECK(approval.description() == "Alice's tablet");
  const sr::Sas shown_new = linking.receive_response(response);
  const sr::Sas shown_old = approval.sas();
  CHECK(shown_new == shown_old);  // the user compares both screens
  if (verbose) {
    std::printf("  SAS:");
    for (size_t i = 0; i < shown_new.emoji.size(); i++)
      std::printf(" %s %s", shown_new.emoji[i].c_str(), shown_new.names[i].c_str());
    std::printf("\n");
  }
  auto approved = alice.approve_link(std::move(approval), NOW + 10, false);
  auto linked = linking.finish(store_l, key(3), approved.payload, NOW + 10);
  sr::Device tablet = std::move(linked.first);
  const std::vector<ustring> tablet_contacts = linked.second;
  CHECK(tablet_contacts == std::vector<ustring>{bob_key});
  CHECK(!tablet.holds_account_key() && alice.holds_account_key());
  const ustring list = approved.device_list;
  tablet.update_contact(list, {}, published);
  const ustring record_t = tablet.prekey_record();
  alice.update_contact(list, {}, record_t);
  tablet.add_contact(bob.session_id(), bob.device_list(), bob.prekey_record());
  auto change = bob.update_contact(list, {}, record_t);
  CHECK(change.added == std::vector<ustring>{tablet.device_id()} && change.removed.empty());
  THROWS(SR_ERR_NO_ACCOUNT_KEY, tablet.revoke(alice.device_id(), NOW + 11));
  THROWS(SR_ERR_NO_ACCOUNT_KEY, tablet.respond_to_link(ustring(8, 1)));

  // ---- fan-out ---------------------------------------------------------------
  out = bob.send(alice_key, "to all of Alice", NOW + 20);
  deliver(alice, out[0], "to all of Alice", bob_key);
  deliver(tablet, out[0], "to all of Alice", bob_key);
  out = tablet.send(bob_key, "from the tablet", NOW + 21);
  CHECK(out[0].mailboxes == (std::vector<ustring>{bob_key, alice_key}));
  deliver(bob, out[0], "from the tablet", alice_key);
  deliver(alice, out[0], "from the tablet", alice_key);
  CHECK(alice.receive(bob.send(alice_key, "x", NOW + 22)[0].bytes).conversation == alice_key);
  for (auto& e : bob.send(alice_key, "y", NOW + 23)) tablet.receive(e.bytes);

  // ---- a call racing one in progress on the same handle, on another thread --------
  {
    // The tablet's send blocks inside its store's commit until a second
    // thread has tried a call on the same handle: that call is refused.
    std::mutex m;
    std::condition_variable cv;
    bool tried = false;
    sr_status racing = SR_OK;
    tablet_db.on_commit = [&] {
      std::thread other([&] {
        uint64_t g;
        sr_error* err = nullptr;
        racing = sr_device_generation(tablet.get(), &g, &err);
        sr_error_free(err);
        std::lock_guard<std::mutex> lock(m);
        tried = true;
        cv.notify_one();
      });
      std::unique_lock<std::mutex> lock(m);
      cv.wait(lock, [&] { return tried; });
      lock.unlock();
      other.join();
    };
    out = tablet.send(bob_key, "while racing", NOW + 24);
    tablet_db.on_commit = nullptr;
    CHECK(racing == SR_ERR_HANDLE_IN_USE);
    deliver(bob, out[0], "while racing", alice_key);
    // After the call, the same handle works again from any thread.
    uint64_t seen = 0;
    std::thread later([&] { seen = tablet.generation(); });
    later.join();
    CHECK(seen > 0);
  }

  // ---- two processes on one memory store ---------------------------------------
  {
    // The extension opens Bob's store and runs on its own thread (a device is
    // Send); the app keeps going on this one.
    sr::Device ext = sr::Device::open(store_b, key(2), bob.generation());
    out = alice.send(bob_key, "for the extension", NOW + 30);
    std::string got;
    std::thread worker([&] { got = ext.receive(out[0].bytes).text(); });
    worker.join();
    CHECK(got == "for the extension");
    THROWS(SR_ERR_UNDECRYPTABLE, bob.receive(out[0].bytes));  // reloaded: a duplicate
    for (auto& e : bob.send(alice_key, "from the app", NOW + 31)) {
      deliver(alice, e, "from the app", bob_key);
      deliver(tablet, e, "from the app", bob_key);
    }
    std::thread sender([&] {
      for (auto& e : ext.send(alice_key, "from the extension", NOW + 32))
        deliver(alice, e, "from the extension", bob_key);
    });
    sender.join();

  }

  // ---- revocation ------------------------------------------------------------------
  const ustring revoked = alice.revoke(tablet.device_id(), NOW + 40);
  change = bob.update_contact(revoked, {}, std::nullopt);
  CHECK(change.removed == std::vector<ustring>{tablet.device_id()});
  out = bob.send(alice_key, "tablet gone", NOW + 41);
  deliver(alice, out[0], "tablet gone", bob_key);
  THROWS(SR_ERR_NOT_A_RECIPIENT, tablet.receive(out[0].bytes));
  tablet = sr::Device(nullptr);
  store_l.reset();  // the last reference to the tablet's store
  CHECK(tablet_db.released);

  // ---- export and import ------------------------------------------------------------
  {
    const uint64_t seen = bob.generation();
    bob = sr::Device(nullptr);  // the app quits (frees its handle)
    out = alice.send(bob_key, "while you were out", NOW + 50);
    THROWS(SR_ERR_ROLLED_BACK, sr::Device::open(store_b, key(2), seen + 1));
    THROWS(SR_ERR_WRONG_KEY, sr::Device::open(store_b, key(9), seen));
    bob = sr::Device::open(store_b, key(2), seen);
    deliver(bob, out[0], "while you were out", alice_key);
  }

  // ---- restore from a backup -------------------------------------------------------
  {
    auto backup = store_a.snapshot();
    deliver(bob, alice.send(bob_key, "not in the backup", NOW + 60)[0], "not in the backup",
            alice_key);
    const uint64_t seen = alice.generation();
    alice = sr::Device(nullptr);
    THROWS(SR_ERR_ROLLED_BACK, sr::Device::open(backup, key(1), seen));
    alice = sr::Device::restore_from_backup(backup, key(1), seen, NOW + 61);
    CHECK(alice.generation() > seen);
    auto healed = alice.heal(NOW + 62);
    const auto& heal = healed.first;
    CHECK(!heal.empty() && healed.second.empty());
    sr::Message m = bob.receive(heal[0].bytes);
    CHECK(m.kind == SR_CONTENT_HEAL && m.new_session && m.content.empty());
    deliver(bob, alice.send(bob_key, "restored", NOW + 63)[0], "restored", alice_key);
    deliver(alice, bob.send(alice_key, "welcome back", NOW + 64)[0], "welcome back", bob_key);
  }

  // ---- errors with bad input -----------------------------------------------------------
  if (verbose) std::printf("error paths:\n");
  THROWS(SR_ERR_INVALID_ARGUMENT, sr::Device::open(store_b, ustring(31, 2), 0));
  THROWS(SR_ERR_EMPTY_STORE, sr::Device::open(sr::Store::memory(), key(2), 0));
  THROWS(SR_ERR_NOT_EMPTY_STORE, sr::Device::create_account(store_b, key(2), "again", NOW));
  THROWS(SR_ERR_INVALID_ARGUMENT, alice.send(ustring(31, 0), "x", NOW));
  THROWS(SR_ERR_INVALID_ARGUMENT, alice.send(ustring(32, 0xff), "x", NOW));
  THROWS(SR_ERR_CONTENT_TOO_LONG, alice.send(bob_key, std::string(SR_MAX_CONTENT_LEN + 1, 'x'), NOW));
  THROWS(SR_ERR_MALFORMED, alice.receive(ustring{0x01, 0x07, 0x00}));
  THROWS(SR_ERR_MALFORMED, alice.receive(ustring(500, 0x5a)));
  THROWS(SR_ERR_SESSION_ID, alice.add_contact("05" + std::string(64, 'g'), bob.device_list(),
                                              std::nullopt));
  THROWS(SR_ERR_DEVICE_LIST, alice.add_contact(bob.session_id(), alice.device_list(), std::nullopt));
  THROWS(SR_ERR_MALFORMED, alice.update_contact(ustring(64, 1), {}, std::nullopt));
  THROWS(SR_ERR_MALFORMED, alice.update_contact(bob.device_list(), {ustring(3, 1)}, std::nullopt));
  THROWS(SR_ERR_INVALID_ARGUMENT, alice.revoke(ustring(31, 0), NOW));
  {
    auto carol_store = sr::Store::memory();
    sr::Device carol = sr::Device::create_account(carol_store, key(4), "Carol", NOW).first;
    auto unknown = sr::attempt([&] { return alice.send(carol.account_key(), "x", NOW + 70); });
    CHECK(!unknown.has_value() && unknown.error().code() == SR_ERR_UNKNOWN_ACCOUNT);
    carol.add_contact(alice.session_id(), alice.device_list(), std::nullopt);
    THROWS(SR_ERR_MISSING_PREKEYS, carol.send(alice_key, "x", NOW + 71));
  }
  sr::Linking early("early");
  THROWS(SR_ERR_LINK_OUT_OF_ORDER, early.finish(sr::Store::memory(), key(5), ustring(8, 1), NOW));
  THROWS(SR_ERR_MALFORMED, early.receive_response(ustring(8, 1)));
  // Arguments no wrapper would pass.
  uint64_t g;
  sr_device* none = nullptr;
  C_FAILS(SR_ERR_NULL_POINTER, sr_device_generation(nullptr, &g, &err));
  C_FAILS(SR_ERR_NULL_POINTER, sr_device_open(store_b.get(), nullptr, 32, nullptr, 0, &none, &err));
  C_FAILS(SR_ERR_INVALID_HANDLE,
          sr_device_generation(reinterpret_cast<const sr_device*>(store_b.get()), &g, &err));
  C_FAILS(SR_ERR_NULL_POINTER, sr_device_receive(alice.get(), nullptr, 4, nullptr, &err));
  CHECK(none == nullptr);
}

int main() {
  verbose = std::getenv("SR_TEST_QUIET") == nullptr;
  try {
    run();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "flow.cpp: FAILED with an exception: %s\n", e.what());
    return 1;
  }
  std::printf("flow.cpp: %d checks passed\n", checks);
  return 0;
}
