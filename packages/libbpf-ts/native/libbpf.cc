// Thin N-API layer over libbpf 1.1: handles, syscalls, -errno. No policy lives here; the
// TypeScript side validates every argument before calling in and maps errno to typed errors.
// Convention: functions return 0 / a non-negative value on success and -errno on failure.

#include <napi.h>

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>

#include <cerrno>
#include <cstdarg>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <linux/netlink.h>
#include <net/if.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <vector>
#include <sched.h>
#include <string>
#include <sys/mount.h>
#include <unistd.h>

namespace {

// ---------------------------------------------------------------------------------------------
// libbpf log capture: libbpf_set_print is process-global, so we install one callback that
// appends to g_capture while an open/load is in progress and drops messages otherwise.
std::string* g_capture = nullptr;

int PrintCallback(enum libbpf_print_level level, const char* fmt, va_list args) {
  // Debug output is large (every relocation) and never needed to explain a failure.
  if (g_capture == nullptr || level == LIBBPF_DEBUG) return 0;
  char stack[1024];
  va_list copy;
  va_copy(copy, args);
  int n = vsnprintf(stack, sizeof(stack), fmt, copy);
  va_end(copy);
  if (n < 0) return 0;
  if (static_cast<size_t>(n) < sizeof(stack)) {
    g_capture->append(stack, static_cast<size_t>(n));
  } else {
    std::string big(static_cast<size_t>(n) + 1, '\0');
    vsnprintf(big.data(), big.size(), fmt, args);
    big.resize(static_cast<size_t>(n));
    g_capture->append(big);
  }
  return 0;
}

struct Capture {
  std::string log;
  Capture() { g_capture = &log; }
  ~Capture() { g_capture = nullptr; }
};

// ---------------------------------------------------------------------------------------------
// Argument helpers. TS validates first; these only keep a wrong call from crashing the process.
// Throws "argument i must be <what>" unless argument i is present and `is` holds for it.
void CheckArg(const Napi::CallbackInfo& info, size_t i, bool (Napi::Value::*is)() const, const char* what) {
  if (info.Length() <= i || !(info[i].*is)()) {
    throw Napi::TypeError::New(info.Env(), "argument " + std::to_string(i) + " must be " + what);
  }
}

int32_t ArgInt(const Napi::CallbackInfo& info, size_t i) {
  CheckArg(info, i, &Napi::Value::IsNumber, "a number");
  return info[i].As<Napi::Number>().Int32Value();
}

uint32_t ArgU32(const Napi::CallbackInfo& info, size_t i) {
  CheckArg(info, i, &Napi::Value::IsNumber, "a number");
  return info[i].As<Napi::Number>().Uint32Value();
}

std::string ArgStr(const Napi::CallbackInfo& info, size_t i) {
  CheckArg(info, i, &Napi::Value::IsString, "a string");
  return info[i].As<Napi::String>().Utf8Value();
}

bool IsNullish(const Napi::CallbackInfo& info, size_t i) {
  return info.Length() <= i || info[i].IsNull() || info[i].IsUndefined();
}

Napi::Buffer<uint8_t> ArgBuf(const Napi::CallbackInfo& info, size_t i) {
  CheckArg(info, i, &Napi::Value::IsBuffer, "a Buffer");
  return info[i].As<Napi::Buffer<uint8_t>>();
}

int NegErrno(int ret) { return ret < 0 ? ret : -errno; }

// Zeroes a libbpf options struct in place and sets its sz (what LIBBPF_OPTS does in C). In place,
// not by copy: libbpf rejects opts whose trailing padding is not zero, and a copy may not keep it so.
template <typename T>
void ZeroOpts(T& o) {
  memset(&o, 0, sizeof(o));
  o.sz = sizeof(o);
}

// 0, or the call's -errno.
Napi::Number ErrnoNumber(Napi::Env env, int ret) { return Napi::Number::New(env, ret < 0 ? NegErrno(ret) : 0); }

// A result object whose err is 0 or the call's -errno (the caller adds the other fields).
Napi::Object ErrResult(Napi::Env env, int ret) {
  Napi::Object out = Napi::Object::New(env);
  out.Set("err", ret < 0 ? NegErrno(ret) : 0);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Network namespace guard: setns() the calling thread into `path`, restore on destruction.
// setns(CLONE_NEWNET) is per-thread, so only the JS main thread moves, and only for one call.
class NetnsGuard {
 public:
  explicit NetnsGuard(const std::string& path) {
    if (path.empty()) return;
    orig_ = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    if (orig_ < 0) {
      err_ = -errno;
      return;
    }
    int target = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (target < 0) {
      err_ = -errno;
      return;
    }
    if (setns(target, CLONE_NEWNET) < 0) {
      err_ = -errno;
      close(target);
      return;
    }
    close(target);
    entered_ = true;
  }
  // Returns false when the original namespace could not be restored (caller must report it).
  bool Restore() {
    bool ok = true;
    if (entered_) ok = setns(orig_, CLONE_NEWNET) == 0;
    entered_ = false;
    if (orig_ >= 0) close(orig_);
    orig_ = -1;
    return ok;
  }
  ~NetnsGuard() { Restore(); }
  int err() const { return err_; }

 private:
  int orig_ = -1;
  int err_ = 0;
  bool entered_ = false;
};

std::string ArgNetns(const Napi::CallbackInfo& info, size_t i) {
  if (IsNullish(info, i)) return std::string();
  return ArgStr(info, i);
}

void RestoreOrThrow(Napi::Env env, NetnsGuard& g) {
  if (!g.Restore()) {
    throw Napi::Error::New(env, "libbpf-ts: failed to restore the original network namespace");
  }
}

// The guard's -errno when it could not enter the namespace (after restoring), else 0.
int EntryError(Napi::Env env, NetnsGuard& g) {
  int e = g.err();
  if (e != 0) RestoreOrThrow(env, g);
  return e;
}

// The { err, op: "setns" } result of a call whose namespace could not be entered.
Napi::Object SetnsFailure(Napi::Object out, int err) {
  out.Set("err", err);
  out.Set("op", "setns");
  return out;
}

// ---------------------------------------------------------------------------------------------
// bpf_object handle (an ObjectSpec before load).
struct ObjHandle {
  bpf_object* obj = nullptr;
};

void FinalizeObj(Napi::Env, ObjHandle* h) {
  if (h->obj != nullptr) bpf_object__close(h->obj);
  delete h;
}

ObjHandle* ArgObj(const Napi::CallbackInfo& info, size_t i) {
  CheckArg(info, i, &Napi::Value::IsExternal, "an object handle");
  ObjHandle* h = info[i].As<Napi::External<ObjHandle>>().Data();
  if (h->obj == nullptr) throw Napi::Error::New(info.Env(), "object handle is closed");
  return h;
}

// The map named by argument 1 in the object of argument 0, or nullptr.
bpf_map* ArgObjMap(const Napi::CallbackInfo& info) {
  ObjHandle* h = ArgObj(info, 0);
  // bpf_object__find_map_by_name also matches internal maps by section name (".rodata").
  return bpf_object__find_map_by_name(h->obj, ArgStr(info, 1).c_str());
}

// objOpen(path) → { handle?, err, log }
Napi::Value ObjOpen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = ArgStr(info, 0);
  Napi::Object out = Napi::Object::New(env);
  Capture cap;
  errno = 0;
  bpf_object* obj = bpf_object__open_file(path.c_str(), nullptr);
  int err = obj == nullptr ? -(errno != 0 ? errno : EINVAL) : 0;
  out.Set("err", err);
  out.Set("log", cap.log);
  if (obj != nullptr) {
    auto* h = new ObjHandle{obj};
    out.Set("handle", Napi::External<ObjHandle>::New(env, h, FinalizeObj));
  }
  return out;
}

// objClose(handle)
Napi::Value ObjClose(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsExternal()) {
    throw Napi::TypeError::New(info.Env(), "argument 0 must be an object handle");
  }
  ObjHandle* h = info[0].As<Napi::External<ObjHandle>>().Data();
  if (h->obj != nullptr) bpf_object__close(h->obj);
  h->obj = nullptr;
  return info.Env().Undefined();
}

std::string MapTypeStr(int t) {
  const char* s = libbpf_bpf_map_type_str(static_cast<enum bpf_map_type>(t));
  return s != nullptr ? s : "unknown(" + std::to_string(t) + ")";
}

std::string ProgTypeStr(int t) {
  const char* s = libbpf_bpf_prog_type_str(static_cast<enum bpf_prog_type>(t));
  return s != nullptr ? s : "unknown(" + std::to_string(t) + ")";
}

// objInfo(handle) → { maps: [...], programs: [...] }
Napi::Value ObjInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ObjHandle* h = ArgObj(info, 0);
  Napi::Array maps = Napi::Array::New(env);
  Napi::Array progs = Napi::Array::New(env);
  uint32_t i = 0;
  bpf_map* m;
  bpf_object__for_each_map(m, h->obj) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("name", bpf_map__name(m));
    o.Set("type", MapTypeStr(bpf_map__type(m)));
    o.Set("keySize", bpf_map__key_size(m));
    o.Set("valueSize", bpf_map__value_size(m));
    o.Set("maxEntries", bpf_map__max_entries(m));
    o.Set("flags", static_cast<double>(bpf_map__map_flags(m)));
    o.Set("internal", bpf_map__is_internal(m));
    const char* pin = bpf_map__pin_path(m);
    if (pin != nullptr) o.Set("pinPath", pin);
    maps.Set(i++, o);
  }
  i = 0;
  bpf_program* p;
  bpf_object__for_each_program(p, h->obj) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("name", bpf_program__name(p));
    o.Set("section", bpf_program__section_name(p));
    o.Set("type", ProgTypeStr(bpf_program__type(p)));
    progs.Set(i++, o);
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("maps", maps);
  out.Set("programs", progs);
  return out;
}

// objDatasec(handle, secName) → [{ name, offset, size }] (empty when no BTF or no such DATASEC)
Napi::Value ObjDatasec(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ObjHandle* h = ArgObj(info, 0);
  std::string sec = ArgStr(info, 1);
  Napi::Array out = Napi::Array::New(env);
  struct btf* btf = bpf_object__btf(h->obj);
  if (btf == nullptr) return out;
  int id = btf__find_by_name_kind(btf, sec.c_str(), BTF_KIND_DATASEC);
  if (id < 0) return out;
  const struct btf_type* t = btf__type_by_id(btf, static_cast<__u32>(id));
  if (t == nullptr) return out;
  const struct btf_var_secinfo* vs = btf_var_secinfos(t);
  uint16_t n = btf_vlen(t);
  for (uint16_t k = 0; k < n; k++, vs++) {
    const struct btf_type* vt = btf__type_by_id(btf, vs->type);
    if (vt == nullptr || !btf_is_var(vt)) continue;
    Napi::Object o = Napi::Object::New(env);
    o.Set("name", btf__name_by_offset(btf, vt->name_off));
    o.Set("offset", vs->offset);
    o.Set("size", vs->size);
    out.Set(out.Length(), o);
  }
  return out;
}

// objSetMaxEntries(handle, map, n) → err
Napi::Value ObjSetMaxEntries(const Napi::CallbackInfo& info) {
  bpf_map* m = ArgObjMap(info);
  if (m == nullptr) return Napi::Number::New(info.Env(), -ENOENT);
  return Napi::Number::New(info.Env(), bpf_map__set_max_entries(m, ArgU32(info, 2)));
}

// objSetPinPath(handle, map, path) → err
Napi::Value ObjSetPinPath(const Napi::CallbackInfo& info) {
  bpf_map* m = ArgObjMap(info);
  if (m == nullptr) return Napi::Number::New(info.Env(), -ENOENT);
  return Napi::Number::New(info.Env(), bpf_map__set_pin_path(m, ArgStr(info, 2).c_str()));
}

// objGetInitialValue(handle, map) → Buffer (copy) | undefined
Napi::Value ObjGetInitialValue(const Napi::CallbackInfo& info) {
  bpf_map* m = ArgObjMap(info);
  if (m == nullptr) return info.Env().Undefined();
  size_t size = 0;
  const void* data = bpf_map__initial_value(m, &size);
  if (data == nullptr) return info.Env().Undefined();
  return Napi::Buffer<uint8_t>::Copy(info.Env(), static_cast<const uint8_t*>(data), size);
}

// objSetInitialValue(handle, map, buf) → err
Napi::Value ObjSetInitialValue(const Napi::CallbackInfo& info) {
  bpf_map* m = ArgObjMap(info);
  if (m == nullptr) return Napi::Number::New(info.Env(), -ENOENT);
  Napi::Buffer<uint8_t> b = ArgBuf(info, 2);
  return Napi::Number::New(info.Env(), bpf_map__set_initial_value(m, b.Data(), b.Length()));
}

int DupFd(int fd) { return fcntl(fd, F_DUPFD_CLOEXEC, 3); }

// Appends { name, fd } for a loaded map or program, with a dup of its fd (skipped when it has none).
void PushLoaded(Napi::Env env, Napi::Array& list, const char* name, int fd) {
  if (fd < 0) return;
  Napi::Object o = Napi::Object::New(env);
  o.Set("name", name);
  o.Set("fd", DupFd(fd));
  list.Set(list.Length(), o);
}

// objLoad(handle) → { err, log, maps: [{name, fd}], programs: [{name, fd}] }
// The libbpf object is always freed here: live maps/programs keep dup'ed fds of their own.
Napi::Value ObjLoad(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ObjHandle* h = ArgObj(info, 0);
  Napi::Object out = Napi::Object::New(env);
  Napi::Array maps = Napi::Array::New(env);
  Napi::Array progs = Napi::Array::New(env);
  int err;
  std::string log;
  {
    Capture cap;
    err = bpf_object__load(h->obj);
    log = cap.log;
  }
  if (err == 0) {
    bpf_map* m;
    bpf_object__for_each_map(m, h->obj) PushLoaded(env, maps, bpf_map__name(m), bpf_map__fd(m));
    bpf_program* p;
    bpf_object__for_each_program(p, h->obj) PushLoaded(env, progs, bpf_program__name(p), bpf_program__fd(p));
  }
  bpf_object__close(h->obj);
  h->obj = nullptr;
  out.Set("err", err);
  out.Set("log", log);
  out.Set("maps", maps);
  out.Set("programs", progs);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Map syscalls on raw fds.

// Arguments 0..2 of the element calls: the map fd, the key buffer(s), the value buffer(s).
struct MapElemArgs {
  int fd;
  Napi::Buffer<uint8_t> k;
  Napi::Buffer<uint8_t> v;
};

MapElemArgs ArgMapElem(const Napi::CallbackInfo& info) {
  return MapElemArgs{ArgInt(info, 0), ArgBuf(info, 1), ArgBuf(info, 2)};  // braced: read in order
}

Napi::Value MapLookup(const Napi::CallbackInfo& info) {
  MapElemArgs a = ArgMapElem(info);
  return ErrnoNumber(info.Env(), bpf_map_lookup_elem(a.fd, a.k.Data(), a.v.Data()));
}

Napi::Value MapUpdate(const Napi::CallbackInfo& info) {
  MapElemArgs a = ArgMapElem(info);
  return ErrnoNumber(info.Env(), bpf_map_update_elem(a.fd, a.k.Data(), a.v.Data(), ArgU32(info, 3)));
}

Napi::Value MapDelete(const Napi::CallbackInfo& info) {
  int fd = ArgInt(info, 0);
  auto k = ArgBuf(info, 1);
  return ErrnoNumber(info.Env(), bpf_map_delete_elem(fd, k.Data()));
}

// mapGetNextKey(fd, key | null, next) → err (-ENOENT at the end)
Napi::Value MapGetNextKey(const Napi::CallbackInfo& info) {
  int fd = ArgInt(info, 0);
  const void* key = nullptr;
  if (!IsNullish(info, 1)) key = ArgBuf(info, 1).Data();
  auto next = ArgBuf(info, 2);
  return ErrnoNumber(info.Env(), bpf_map_get_next_key(fd, key, next.Data()));
}

// { err, count }: the kernel writes back how many elements it processed.
Napi::Object BatchResult(Napi::Env env, int r, __u32 count) {
  Napi::Object out = ErrResult(env, r);
  out.Set("count", count);
  return out;
}

// mapUpdateBatch(fd, keys, values, count, elemFlags) → { err, count }
Napi::Value MapUpdateBatch(const Napi::CallbackInfo& info) {
  MapElemArgs a = ArgMapElem(info);
  __u32 count = ArgU32(info, 3);
  struct bpf_map_batch_opts opts;
  ZeroOpts(opts);
  opts.elem_flags = ArgU32(info, 4);
  int r = bpf_map_update_batch(a.fd, a.k.Data(), a.v.Data(), &count, &opts);
  return BatchResult(info.Env(), r, count);
}

// mapDeleteBatch(fd, keys, count) → { err, count }
Napi::Value MapDeleteBatch(const Napi::CallbackInfo& info) {
  int fd = ArgInt(info, 0);
  auto k = ArgBuf(info, 1);
  __u32 count = ArgU32(info, 2);
  struct bpf_map_batch_opts opts;
  ZeroOpts(opts);
  int r = bpf_map_delete_batch(fd, k.Data(), &count, &opts);
  return BatchResult(info.Env(), r, count);
}

// A kernel name field (NUL-padded, possibly unterminated) as a string.
template <size_t N>
std::string KernelName(const char (&name)[N]) {
  return std::string(name, strnlen(name, N));
}

// bpf_obj_get_info_by_fd(argument 0) into a zeroed `T`. The result object carries its err and, when
// it succeeded (`ok`), the id, type (named by `typeName`) and name every kernel object info has.
template <typename T>
Napi::Object InfoByFd(const Napi::CallbackInfo& info, T& ki, std::string (*typeName)(int), bool& ok) {
  int fd = ArgInt(info, 0);
  memset(&ki, 0, sizeof(ki));
  __u32 len = sizeof(ki);
  int r = bpf_obj_get_info_by_fd(fd, &ki, &len);
  Napi::Object out = ErrResult(info.Env(), r);
  ok = r >= 0;
  if (!ok) return out;
  out.Set("id", ki.id);
  out.Set("type", typeName(static_cast<int>(ki.type)));
  out.Set("name", KernelName(ki.name));
  return out;
}

// mapInfo(fd) → { err, id, type, keySize, valueSize, maxEntries, flags, name }
Napi::Value MapInfo(const Napi::CallbackInfo& info) {
  struct bpf_map_info mi;
  bool ok;
  Napi::Object out = InfoByFd(info, mi, MapTypeStr, ok);
  if (!ok) return out;
  out.Set("keySize", mi.key_size);
  out.Set("valueSize", mi.value_size);
  out.Set("maxEntries", mi.max_entries);
  out.Set("flags", mi.map_flags);
  return out;
}

// progInfo(fd) → { err, id, type, name, tag }
Napi::Value ProgInfo(const Napi::CallbackInfo& info) {
  struct bpf_prog_info pi;
  bool ok;
  Napi::Object out = InfoByFd(info, pi, ProgTypeStr, ok);
  if (!ok) return out;
  out.Set("tag", Napi::Buffer<uint8_t>::Copy(info.Env(), pi.tag, sizeof(pi.tag)));
  return out;
}

Napi::Value ObjPin(const Napi::CallbackInfo& info) {
  int fd = ArgInt(info, 0);
  return ErrnoNumber(info.Env(), bpf_obj_pin(fd, ArgStr(info, 1).c_str()));
}

// objGet(path) → fd | -errno
Napi::Value ObjGet(const Napi::CallbackInfo& info) {
  int r = bpf_obj_get(ArgStr(info, 0).c_str());
  return Napi::Number::New(info.Env(), r < 0 ? NegErrno(r) : r);
}

Napi::Value CloseFd(const Napi::CallbackInfo& info) {
  int fd = ArgInt(info, 0);
  int r = fd >= 0 ? close(fd) : 0;
  return Napi::Number::New(info.Env(), r < 0 ? -errno : 0);
}

// ---------------------------------------------------------------------------------------------
// progTestRun(fd, dataIn, dataOut, ctxIn|null, ctxOut|null, repeat, netns|null)
//   → { err, retval, duration, dataSizeOut, ctxSizeOut }
// netns matters for tc programs: the kernel resolves ctx->ifindex in the caller's namespace.
Napi::Value ProgTestRun(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgInt(info, 0);
  auto din = ArgBuf(info, 1);
  auto dout = ArgBuf(info, 2);
  struct bpf_test_run_opts opts;
  ZeroOpts(opts);
  opts.data_in = din.Data();
  opts.data_size_in = static_cast<__u32>(din.Length());
  opts.data_out = dout.Data();
  opts.data_size_out = static_cast<__u32>(dout.Length());
  if (!IsNullish(info, 3)) {
    auto cin = ArgBuf(info, 3);
    opts.ctx_in = cin.Data();
    opts.ctx_size_in = static_cast<__u32>(cin.Length());
  }
  if (!IsNullish(info, 4)) {
    auto cout = ArgBuf(info, 4);
    opts.ctx_out = cout.Data();
    opts.ctx_size_out = static_cast<__u32>(cout.Length());
  }
  opts.repeat = ArgU32(info, 5);
  std::string ns = ArgNetns(info, 6);
  Napi::Object out = Napi::Object::New(env);
  NetnsGuard g(ns);
  if (int e = EntryError(env, g)) return SetnsFailure(out, e);
  int r = bpf_prog_test_run_opts(fd, &opts);
  RestoreOrThrow(env, g);
  out.Set("op", "program.run");
  out.Set("err", r < 0 ? NegErrno(r) : 0);
  out.Set("retval", opts.retval);
  out.Set("duration", opts.duration);
  out.Set("dataSizeOut", opts.data_size_out);
  out.Set("ctxSizeOut", opts.ctx_size_out);
  return out;
}

// ---------------------------------------------------------------------------------------------
// tc (clsact + cls_bpf direct-action), optionally inside another network namespace.

// The clsact hook and filter options that tc attach/detach/query name: ifindex and attach point are
// arguments 0 and 1, priority and handle arguments prioArg and prioArg + 1.
struct TcTarget {
  struct bpf_tc_hook hook;
  struct bpf_tc_opts opts;
};

// Fills `t` in place (see ZeroOpts).
void ArgTcTarget(const Napi::CallbackInfo& info, size_t prioArg, TcTarget& t) {
  ZeroOpts(t.hook);
  ZeroOpts(t.opts);
  t.hook.ifindex = ArgInt(info, 0);
  t.hook.attach_point = static_cast<enum bpf_tc_attach_point>(ArgU32(info, 1));
  t.opts.priority = ArgU32(info, prioArg);
  t.opts.handle = ArgU32(info, prioArg + 1);
}

// tcAttach(ifindex, attachPoint, progFd, priority, handle, flags, netns|null)
//   → { err, hookErr, handle, priority, progId }
Napi::Value TcAttach(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  TcTarget t;
  ArgTcTarget(info, 3, t);
  t.opts.prog_fd = ArgInt(info, 2);
  t.opts.flags = ArgU32(info, 5);
  std::string ns = ArgNetns(info, 6);
  Napi::Object out = Napi::Object::New(env);
  NetnsGuard g(ns);
  if (int e = EntryError(env, g)) return SetnsFailure(out, e);
  int hr = bpf_tc_hook_create(&t.hook);
  // An existing clsact qdisc is fine: we only add a filter to it.
  if (hr < 0 && hr != -EEXIST) {
    out.Set("err", hr);
    out.Set("op", "tc.hook_create");
    RestoreOrThrow(env, g);
    return out;
  }
  int r = bpf_tc_attach(&t.hook, &t.opts);
  RestoreOrThrow(env, g);
  out.Set("err", r);
  out.Set("op", "tc.attach");
  out.Set("handle", t.opts.handle);
  out.Set("priority", t.opts.priority);
  out.Set("progId", t.opts.prog_id);
  return out;
}

// tcDetach(ifindex, attachPoint, priority, handle, netns|null) → err
Napi::Value TcDetach(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  TcTarget t;
  ArgTcTarget(info, 2, t);
  std::string ns = ArgNetns(info, 4);
  NetnsGuard g(ns);
  if (int e = EntryError(env, g)) return Napi::Number::New(env, e);
  int r = bpf_tc_detach(&t.hook, &t.opts);
  RestoreOrThrow(env, g);
  return Napi::Number::New(env, r);
}

// tcQuery(ifindex, attachPoint, priority, handle, netns|null) → { err, progId }
Napi::Value TcQuery(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  TcTarget t;
  ArgTcTarget(info, 2, t);
  std::string ns = ArgNetns(info, 4);
  Napi::Object out = Napi::Object::New(env);
  NetnsGuard g(ns);
  if (int e = EntryError(env, g)) {
    out.Set("err", e);
    return out;
  }
  int r = bpf_tc_query(&t.hook, &t.opts);
  RestoreOrThrow(env, g);
  out.Set("err", r);
  out.Set("progId", t.opts.prog_id);
  return out;
}

// ifNameToIndex(name, netns|null) → ifindex | -errno
Napi::Value IfNameToIndex(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name = ArgStr(info, 0);
  std::string ns = ArgNetns(info, 1);
  NetnsGuard g(ns);
  if (int e = EntryError(env, g)) return Napi::Number::New(env, e);
  errno = 0;
  unsigned idx = if_nametoindex(name.c_str());
  int e = errno;
  RestoreOrThrow(env, g);
  if (idx == 0) return Napi::Number::New(env, -(e != 0 ? e : ENODEV));
  return Napi::Number::New(env, idx);
}

// nlDump(protocol, request, netns|null) → { err, op, data }: sends one NLM_F_DUMP request and
// returns every reply message (headers included) up to NLMSG_DONE, concatenated; the TS side
// builds the request and parses the replies. err is the NLMSG_ERROR errno if the kernel sent one.
Napi::Value NlDump(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int protocol = ArgInt(info, 0);
  auto req = ArgBuf(info, 1);
  std::string ns = ArgNetns(info, 2);
  Napi::Object out = Napi::Object::New(env);
  NetnsGuard g(ns);
  if (int e = EntryError(env, g)) return SetnsFailure(out, e);
  // The socket belongs to the namespace it was created in; the guard can be released right after.
  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, protocol);
  int sockErr = fd < 0 ? -errno : 0;
  RestoreOrThrow(env, g);
  if (fd < 0) {
    out.Set("err", sockErr);
    out.Set("op", "netlink.socket");
    return out;
  }
  struct timeval tv = {5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  struct sockaddr_nl kernel;
  memset(&kernel, 0, sizeof(kernel));
  kernel.nl_family = AF_NETLINK;
  int err = 0;
  const char* op = "netlink.dump";
  std::vector<uint8_t> data;
  if (sendto(fd, req.Data(), req.Length(), 0, reinterpret_cast<struct sockaddr*>(&kernel), sizeof(kernel)) < 0) {
    err = -errno;
    op = "netlink.send";
  }
  std::vector<uint8_t> buf(1 << 16);
  bool done = err != 0;
  while (!done) {
    ssize_t n = recv(fd, buf.data(), buf.size(), 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      err = -errno;
      op = "netlink.recv";
      break;
    }
    if (n == 0) break;
    size_t len = static_cast<size_t>(n);
    for (auto* h = reinterpret_cast<struct nlmsghdr*>(buf.data()); NLMSG_OK(h, len); h = NLMSG_NEXT(h, len)) {
      if (h->nlmsg_type == NLMSG_DONE) {
        done = true;
        break;
      }
      if (h->nlmsg_type == NLMSG_ERROR) {
        auto* e = static_cast<struct nlmsgerr*>(NLMSG_DATA(h));
        err = e->error;
        done = true;
        break;
      }
      const uint8_t* p = reinterpret_cast<const uint8_t*>(h);
      data.insert(data.end(), p, p + NLMSG_ALIGN(h->nlmsg_len));
    }
  }
  close(fd);
  out.Set("err", err);
  out.Set("op", op);
  out.Set("data", Napi::Buffer<uint8_t>::Copy(env, data.data(), data.size()));
  return out;
}

// ---------------------------------------------------------------------------------------------
// Misc

Napi::Value NumPossibleCpus(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), libbpf_num_possible_cpus());
}

Napi::Value MountBpffs(const Napi::CallbackInfo& info) {
  std::string path = ArgStr(info, 0);
  int r = mount("bpf", path.c_str(), "bpf", 0, "mode=0700");
  return Napi::Number::New(info.Env(), r < 0 ? -errno : 0);
}

Napi::Value Unmount(const Napi::CallbackInfo& info) {
  std::string path = ArgStr(info, 0);
  int r = umount2(path.c_str(), 0);
  return Napi::Number::New(info.Env(), r < 0 ? -errno : 0);
}

// libbpfStrerror(err) → libbpf's message (covers libbpf's own 4000+ error codes)
Napi::Value LibbpfStrerror(const Napi::CallbackInfo& info) {
  char buf[256];
  libbpf_strerror(ArgInt(info, 0), buf, sizeof(buf));
  return Napi::String::New(info.Env(), buf);
}

// struct __sk_buff layout from the UAPI header this addon was compiled against; the TS codec
// is checked against it in tests.
Napi::Value SkbLayout(Napi::Env env) {
  Napi::Object o = Napi::Object::New(env);
#define OFF(js, f) o.Set(js, static_cast<double>(offsetof(struct __sk_buff, f)))
  OFF("len", len);
  OFF("pktType", pkt_type);
  OFF("mark", mark);
  OFF("queueMapping", queue_mapping);
  OFF("protocol", protocol);
  OFF("vlanPresent", vlan_present);
  OFF("vlanTci", vlan_tci);
  OFF("vlanProto", vlan_proto);
  OFF("priority", priority);
  OFF("ingressIfindex", ingress_ifindex);
  OFF("ifindex", ifindex);
  OFF("tcIndex", tc_index);
  OFF("cb", cb);
  OFF("hash", hash);
  OFF("tcClassid", tc_classid);
  OFF("tstamp", tstamp);
  OFF("wireLen", wire_len);
  OFF("gsoSegs", gso_segs);
  OFF("gsoSize", gso_size);
  OFF("hwtstamp", hwtstamp);
#undef OFF
  o.Set("size", static_cast<double>(sizeof(struct __sk_buff)));
  return o;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  libbpf_set_print(PrintCallback);
  exports.Set("objOpen", Napi::Function::New(env, ObjOpen));
  exports.Set("objClose", Napi::Function::New(env, ObjClose));
  exports.Set("objInfo", Napi::Function::New(env, ObjInfo));
  exports.Set("objDatasec", Napi::Function::New(env, ObjDatasec));
  exports.Set("objSetMaxEntries", Napi::Function::New(env, ObjSetMaxEntries));
  exports.Set("objSetPinPath", Napi::Function::New(env, ObjSetPinPath));
  exports.Set("objGetInitialValue", Napi::Function::New(env, ObjGetInitialValue));
  exports.Set("objSetInitialValue", Napi::Function::New(env, ObjSetInitialValue));
  exports.Set("objLoad", Napi::Function::New(env, ObjLoad));
  exports.Set("mapLookup", Napi::Function::New(env, MapLookup));
  exports.Set("mapUpdate", Napi::Function::New(env, MapUpdate));
  exports.Set("mapDelete", Napi::Function::New(env, MapDelete));
  exports.Set("mapGetNextKey", Napi::Function::New(env, MapGetNextKey));
  exports.Set("mapUpdateBatch", Napi::Function::New(env, MapUpdateBatch));
  exports.Set("mapDeleteBatch", Napi::Function::New(env, MapDeleteBatch));
  exports.Set("mapInfo", Napi::Function::New(env, MapInfo));
  exports.Set("progInfo", Napi::Function::New(env, ProgInfo));
  exports.Set("objPin", Napi::Function::New(env, ObjPin));
  exports.Set("objGet", Napi::Function::New(env, ObjGet));
  exports.Set("closeFd", Napi::Function::New(env, CloseFd));
  exports.Set("progTestRun", Napi::Function::New(env, ProgTestRun));
  exports.Set("tcAttach", Napi::Function::New(env, TcAttach));
  exports.Set("tcDetach", Napi::Function::New(env, TcDetach));
  exports.Set("tcQuery", Napi::Function::New(env, TcQuery));
  exports.Set("ifNameToIndex", Napi::Function::New(env, IfNameToIndex));
  exports.Set("nlDump", Napi::Function::New(env, NlDump));
  exports.Set("numPossibleCpus", Napi::Function::New(env, NumPossibleCpus));
  exports.Set("mountBpffs", Napi::Function::New(env, MountBpffs));
  exports.Set("unmount", Napi::Function::New(env, Unmount));
  exports.Set("libbpfStrerror", Napi::Function::New(env, LibbpfStrerror));
  exports.Set("skbLayout", SkbLayout(env));
  return exports;
}

}  // namespace

NODE_API_MODULE(native_libbpf, Init)
