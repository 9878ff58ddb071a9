// Thin N-API wrapper over an AF_NETLINK socket. Everything protocol-specific (framing, seq
// matching, dumps) lives in TypeScript; this file only owns the fd, the netns dance at open(),
// sendmsg() on the libuv threadpool and a uv_poll_t that hands each received datagram to JS.
//
// Why sends leave the JS thread: the kernel handles a netlink request inside sendmsg(), in the
// sender's context. That usually takes microseconds, but it can block for minutes: RTM_NEWLINK
// of a kind whose module is not loaded waits for modprobe, and the module's init waits for
// pernet_ops_rwsem, which a netns teardown (e.g. a WireGuard device with 10,000 peers: one RCU
// grace period each) holds for as long as it runs. A blocking sendmsg() on the JS thread froze
// the whole process for that long, timeouts included.
//
// Each socket gets its own detached sender thread (started at the first send), not the libuv
// threadpool: a stuck sendmsg() must neither starve fs/dns work of the 4 pool threads nor
// hold up process exit (libuv joins its pool threads at exit; a detached thread just dies).
#include <napi.h>
#include <uv.h>

#include <errno.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <sched.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#ifndef SOL_NETLINK
#define SOL_NETLINK 270
#endif

namespace {

// Error carrying { errno (positive), code ('ENOENT'), syscall } like Node's own system errors.
Napi::Error SysError(Napi::Env env, const char* syscall, int err, const std::string& detail = "") {
  const char* code = uv_err_name(-err);
  std::string msg = std::string(syscall) + " failed: " + code + " (" + strerror(err) + ")";
  if (!detail.empty()) msg += ": " + detail;
  Napi::Error e = Napi::Error::New(env, msg);
  e.Set("errno", Napi::Number::New(env, err));
  e.Set("code", Napi::String::New(env, code));
  e.Set("syscall", Napi::String::New(env, syscall));
  if (!detail.empty()) e.Set("detail", Napi::String::New(env, detail));
  return e;
}

// The netns argument pair (path string | null, fd number | null) of the JS calls, resolved to an
// fd. A path is opened here and closed when this goes out of scope, on every exit path.
class NetnsArg {
 public:
  NetnsArg(Napi::Env env, const Napi::Value& path, const Napi::Value& fd) {
    if (path.IsString()) {
      std::string p = path.As<Napi::String>().Utf8Value();
      fd_ = open(p.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd_ < 0) throw SysError(env, "open", errno, p);
      owned_ = true;
    } else if (fd.IsNumber()) {
      fd_ = fd.As<Napi::Number>().Int32Value();
    }
  }
  ~NetnsArg() {
    if (owned_) close(fd_);
  }
  NetnsArg(const NetnsArg&) = delete;
  NetnsArg& operator=(const NetnsArg&) = delete;
  // -1 = stay in the caller's netns.
  int fd() const { return fd_; }

 private:
  int fd_ = -1;
  bool owned_ = false;
};

// Opens the netlink socket, entering `netnsFd` for the socket() call only. The original netns
// is restored before returning on every path. Returns the fd or -errno; *failedCall names the
// syscall that failed.
int OpenInNetns(int protocol, int netnsFd, const char** failedCall) {
  const int flags = SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK;
  if (netnsFd < 0) {
    int fd = socket(AF_NETLINK, flags, protocol);
    if (fd < 0) *failedCall = "socket";
    return fd < 0 ? -errno : fd;
  }
  // Per-thread namespace: /proc/thread-self, not /proc/self (which is the main thread's).
  int orig = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  if (orig < 0) {
    *failedCall = "open(/proc/thread-self/ns/net)";
    return -errno;
  }
  if (setns(netnsFd, CLONE_NEWNET) != 0) {
    int err = errno;
    close(orig);
    *failedCall = "setns";
    return -err;
  }
  int fd = socket(AF_NETLINK, flags, protocol);
  int sockErr = fd < 0 ? errno : 0;
  if (setns(orig, CLONE_NEWNET) != 0) {
    // Continuing would run the rest of the process in the wrong namespace.
    int err = errno;
    close(orig);
    if (fd >= 0) close(fd);
    *failedCall = "setns(restore)";
    return -err;
  }
  close(orig);
  if (fd < 0) {
    *failedCall = "socket";
    return -sockErr;
  }
  return fd;
}

class NativeSocket : public Napi::ObjectWrap<NativeSocket> {
 public:
  static Napi::Object Init(Napi::Env env, Napi::Object exports) {
    Napi::Function ctor = DefineClass(env, "NativeSocket",
                                      {
                                          InstanceMethod("portId", &NativeSocket::PortId),
                                          InstanceMethod("fd", &NativeSocket::Fd),
                                          InstanceMethod("send", &NativeSocket::Send),
                                          InstanceMethod("sendAsync", &NativeSocket::SendAsync),
                                          InstanceMethod("addMembership", &NativeSocket::AddMembership),
                                          InstanceMethod("dropMembership", &NativeSocket::DropMembership),
                                          InstanceMethod("setRcvbuf", &NativeSocket::SetRcvbuf),
                                          InstanceMethod("setNetlinkOption", &NativeSocket::SetNetlinkOption),
                                          InstanceMethod("ref", &NativeSocket::DoRef),
                                          InstanceMethod("unref", &NativeSocket::DoUnref),
                                          InstanceMethod("close", &NativeSocket::Close),
                                      });
    exports.Set("NativeSocket", ctor);
    return exports;
  }

  // new NativeSocket(protocol, netnsPath|null, netnsFd, groupsMask, onMessage, onError)
  NativeSocket(const Napi::CallbackInfo& info) : Napi::ObjectWrap<NativeSocket>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 6 || !info[0].IsNumber() || !info[3].IsNumber() || !info[4].IsFunction() ||
        !info[5].IsFunction()) {
      throw Napi::TypeError::New(env, "NativeSocket(protocol, netnsPath, netnsFd, groups, onMessage, onError)");
    }
    int protocol = info[0].As<Napi::Number>().Int32Value();
    uint32_t groups = info[3].As<Napi::Number>().Uint32Value();

    int fd;
    const char* failed = "socket";
    {
      NetnsArg ns(env, info[1], info[2]);
      fd = OpenInNetns(protocol, ns.fd(), &failed);
    }

    if (fd < 0) throw SysError(env, failed, -fd);

    int one = 1;
    // NETLINK_PKTINFO tells us which multicast group a datagram came from (works for groups > 32).
    if (setsockopt(fd, SOL_NETLINK, NETLINK_PKTINFO, &one, sizeof one) != 0) {
      int err = errno;
      close(fd);
      throw SysError(env, "setsockopt(NETLINK_PKTINFO)", err);
    }
    struct sockaddr_nl sa;
    memset(&sa, 0, sizeof sa);
    sa.nl_family = AF_NETLINK;
    sa.nl_groups = groups;
    if (bind(fd, reinterpret_cast<struct sockaddr*>(&sa), sizeof sa) != 0) {
      int err = errno;
      close(fd);
      throw SysError(env, "bind", err);
    }
    socklen_t alen = sizeof sa;
    if (getsockname(fd, reinterpret_cast<struct sockaddr*>(&sa), &alen) != 0) {
      int err = errno;
      close(fd);
      throw SysError(env, "getsockname", err);
    }
    portId_ = sa.nl_pid;

    uv_loop_t* loop = nullptr;
    if (napi_get_uv_event_loop(env, &loop) != napi_ok || loop == nullptr) {
      close(fd);
      throw Napi::Error::New(env, "no libuv loop");
    }
    poll_ = new uv_poll_t;
    int rc = uv_poll_init(loop, poll_, fd);
    if (rc == 0) {
      poll_->data = this;
      rc = uv_poll_start(poll_, UV_READABLE, OnReadable);
    }
    if (rc != 0) {
      uv_close(reinterpret_cast<uv_handle_t*>(poll_), [](uv_handle_t* h) { delete reinterpret_cast<uv_poll_t*>(h); });
      poll_ = nullptr;
      close(fd);
      throw SysError(env, "uv_poll_start", -rc);
    }
    fd_ = fd;
    onMessage_ = Napi::Persistent(info[4].As<Napi::Function>());
    onError_ = Napi::Persistent(info[5].As<Napi::Function>());
    asyncContext_ = new Napi::AsyncContext(env, "veil:netlink");
    // While open, the JS wrapper must outlive any GC: the poll callback refers to it.
    Ref();
  }

  ~NativeSocket() override { Shutdown(); }

 private:
  // State shared with the sender thread, which outlives the socket if close() happens while
  // it is inside sendmsg(). It sends on its own dup of the fd, so closing ours is always safe.
  struct Sender {
    std::mutex mu;
    std::condition_variable cv;
    std::deque<std::vector<uint8_t>> todo;  // datagrams to send, in order
    std::deque<int> done;                   // their results (0 or errno), in order
    bool stop = false;
    uv_async_t* async = nullptr;  // signalled when `done` grows; null once stopped
  };

  int fd_ = -1;
  std::shared_ptr<Sender> sender_;
  // JS callbacks of sendAsync(), in the order of `todo` (JS thread only).
  std::deque<Napi::FunctionReference> sendCallbacks_;
  uint32_t portId_ = 0;
  uv_poll_t* poll_ = nullptr;
  Napi::FunctionReference onMessage_;
  Napi::FunctionReference onError_;
  Napi::AsyncContext* asyncContext_ = nullptr;

  // Stops polling and closes the fd. Safe to call repeatedly.
  void Shutdown() {
    if (poll_ != nullptr) {
      uv_poll_stop(poll_);
      uv_close(reinterpret_cast<uv_handle_t*>(poll_), [](uv_handle_t* h) { delete reinterpret_cast<uv_poll_t*>(h); });
      poll_ = nullptr;
    }
    if (sender_) {
      uv_async_t* async;
      {
        std::lock_guard<std::mutex> lk(sender_->mu);
        sender_->stop = true;
        sender_->todo.clear();
        async = sender_->async;
        sender_->async = nullptr;
      }
      sender_->cv.notify_one();
      uv_close(reinterpret_cast<uv_handle_t*>(async), [](uv_handle_t* h) { delete reinterpret_cast<uv_async_t*>(h); });
      sender_.reset();
    }
    sendCallbacks_.clear();
    if (fd_ >= 0) {
      close(fd_);
      fd_ = -1;
    }
  }

  static void SenderLoop(std::shared_ptr<Sender> st, int fd) {
    struct sockaddr_nl to;
    memset(&to, 0, sizeof to);
    to.nl_family = AF_NETLINK;  // nl_pid 0: the kernel
    for (;;) {
      std::vector<uint8_t> msg;
      {
        std::unique_lock<std::mutex> lk(st->mu);
        st->cv.wait(lk, [&] { return st->stop || !st->todo.empty(); });
        if (st->stop) break;
        msg = std::move(st->todo.front());
        st->todo.pop_front();
      }
      ssize_t n;
      do {
        n = sendto(fd, msg.data(), msg.size(), 0, reinterpret_cast<struct sockaddr*>(&to), sizeof to);
      } while (n < 0 && errno == EINTR);
      int err = n < 0 ? errno : 0;
      std::lock_guard<std::mutex> lk(st->mu);
      if (st->stop) break;
      st->done.push_back(err);
      uv_async_send(st->async);
    }
    close(fd);
  }

  // JS thread: runs the callbacks of the sends that completed.
  static void OnSent(uv_async_t* handle) {
    auto* self = static_cast<NativeSocket*>(handle->data);
    Napi::Env env = self->Env();
    Napi::HandleScope scope(env);
    Napi::Object keepAlive = self->Value();
    (void)keepAlive;
    std::deque<int> done;
    {
      std::lock_guard<std::mutex> lk(self->sender_->mu);
      done.swap(self->sender_->done);
    }
    for (int err : done) {
      if (self->sendCallbacks_.empty()) return;  // closed by an earlier callback
      Napi::FunctionReference cb = std::move(self->sendCallbacks_.front());
      self->sendCallbacks_.pop_front();
      self->Invoke(cb, {err != 0 ? SysError(env, "sendto", err).Value() : env.Undefined()});
    }
  }

  void CheckOpen(Napi::Env env, const char* op) {
    if (fd_ < 0) throw SysError(env, op, EBADF, "socket is closed");
  }

  Napi::Value PortId(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), portId_); }
  Napi::Value Fd(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), fd_); }

  Napi::Value Send(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    CheckOpen(env, "sendto");
    if (info.Length() < 1 || !info[0].IsBuffer()) throw Napi::TypeError::New(env, "send(buffer)");
    auto buf = info[0].As<Napi::Buffer<uint8_t>>();
    struct sockaddr_nl to;
    memset(&to, 0, sizeof to);
    to.nl_family = AF_NETLINK;  // nl_pid 0: the kernel
    ssize_t n;
    do {
      n = sendto(fd_, buf.Data(), buf.Length(), 0, reinterpret_cast<struct sockaddr*>(&to), sizeof to);
    } while (n < 0 && errno == EINTR);
    if (n < 0) throw SysError(env, "sendto", errno);
    return Napi::Number::New(env, static_cast<double>(n));
  }

  // sendAsync(buffer, callback(err | undefined)): sendmsg() on the socket's sender thread, in
  // call order. The bytes are copied, so the buffer may change afterwards. The callback never
  // runs after close().
  void SendAsync(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    CheckOpen(env, "sendto");
    if (info.Length() < 2 || !info[0].IsBuffer() || !info[1].IsFunction()) {
      throw Napi::TypeError::New(env, "sendAsync(buffer, callback)");
    }
    auto buf = info[0].As<Napi::Buffer<uint8_t>>();
    if (!sender_) StartSender(env);
    sendCallbacks_.push_back(Napi::Persistent(info[1].As<Napi::Function>()));
    {
      std::lock_guard<std::mutex> lk(sender_->mu);
      sender_->todo.emplace_back(buf.Data(), buf.Data() + buf.Length());
    }
    sender_->cv.notify_one();
  }

  void StartSender(Napi::Env env) {
    uv_loop_t* loop = nullptr;
    if (napi_get_uv_event_loop(env, &loop) != napi_ok || loop == nullptr) {
      throw Napi::Error::New(env, "no libuv loop");
    }
    int dupFd = fcntl(fd_, F_DUPFD_CLOEXEC, 0);
    if (dupFd < 0) throw SysError(env, "fcntl(F_DUPFD_CLOEXEC)", errno);
    auto* async = new uv_async_t;
    int rc = uv_async_init(loop, async, OnSent);
    if (rc != 0) {
      delete async;
      close(dupFd);
      throw SysError(env, "uv_async_init", -rc);
    }
    async->data = this;
    // Pending requests keep the poll handle referenced; a send stuck in the kernel must not
    // keep the process alive by itself.
    uv_unref(reinterpret_cast<uv_handle_t*>(async));
    auto st = std::make_shared<Sender>();
    st->async = async;
    try {
      std::thread(SenderLoop, st, dupFd).detach();
    } catch (const std::system_error& e) {
      uv_close(reinterpret_cast<uv_handle_t*>(async), [](uv_handle_t* h) { delete reinterpret_cast<uv_async_t*>(h); });
      close(dupFd);
      throw SysError(env, "pthread_create", e.code().value());
    }
    sender_ = std::move(st);
  }

  void Membership(const Napi::CallbackInfo& info, int opt, const char* name) {
    Napi::Env env = info.Env();
    CheckOpen(env, name);
    if (info.Length() < 1 || !info[0].IsNumber()) throw Napi::TypeError::New(env, "group must be a number");
    uint32_t group = info[0].As<Napi::Number>().Uint32Value();
    if (setsockopt(fd_, SOL_NETLINK, opt, &group, sizeof group) != 0) throw SysError(env, name, errno);
  }
  void AddMembership(const Napi::CallbackInfo& info) {
    Membership(info, NETLINK_ADD_MEMBERSHIP, "setsockopt(NETLINK_ADD_MEMBERSHIP)");
  }
  void DropMembership(const Napi::CallbackInfo& info) {
    Membership(info, NETLINK_DROP_MEMBERSHIP, "setsockopt(NETLINK_DROP_MEMBERSHIP)");
  }

  // Both int-valued setters: the open check, the (number, number|boolean) arguments, one setsockopt.
  void SetIntOption(const Napi::CallbackInfo& info, const char* what, const char* usage, bool secondIsBool,
                    const std::function<void(Napi::Env, int, const Napi::Value&)>& apply) {
    Napi::Env env = info.Env();
    CheckOpen(env, what);
    if (info.Length() < 2 || !info[0].IsNumber() || !(secondIsBool ? info[1].IsBoolean() : info[1].IsNumber())) {
      throw Napi::TypeError::New(env, usage);
    }
    apply(env, info[0].As<Napi::Number>().Int32Value(), info[1]);
  }
  void Setsockopt(Napi::Env env, int level, int opt, int value, const char* what, const std::string& detail = "") {
    if (setsockopt(fd_, level, opt, &value, sizeof value) != 0) throw SysError(env, what, errno, detail);
  }

  void SetRcvbuf(const Napi::CallbackInfo& info) {
    SetIntOption(info, "setsockopt(SO_RCVBUF)", "setRcvbuf(bytes, force)", true, [this](Napi::Env env, int bytes, const Napi::Value& v) {
      bool force = v.As<Napi::Boolean>().Value();
      Setsockopt(env, SOL_SOCKET, force ? SO_RCVBUFFORCE : SO_RCVBUF, bytes,
                 force ? "setsockopt(SO_RCVBUFFORCE)" : "setsockopt(SO_RCVBUF)");
    });
  }

  void SetNetlinkOption(const Napi::CallbackInfo& info) {
    SetIntOption(info, "setsockopt(SOL_NETLINK)", "setNetlinkOption(name, value)", false, [this](Napi::Env env, int name, const Napi::Value& v) {
      Setsockopt(env, SOL_NETLINK, name, v.As<Napi::Number>().Int32Value(), "setsockopt(SOL_NETLINK)",
                 "option " + std::to_string(name));
    });
  }

  void DoRef(const Napi::CallbackInfo&) {
    if (poll_ != nullptr) uv_ref(reinterpret_cast<uv_handle_t*>(poll_));
  }
  void DoUnref(const Napi::CallbackInfo&) {
    if (poll_ != nullptr) uv_unref(reinterpret_cast<uv_handle_t*>(poll_));
  }

  void Close(const Napi::CallbackInfo&) {
    bool wasOpen = fd_ >= 0;
    Shutdown();
    if (wasOpen) {
      onMessage_.Reset();
      onError_.Reset();
      delete asyncContext_;
      asyncContext_ = nullptr;
      Unref();
    }
  }

  // Calls a JS callback from the poll callback; an exception becomes an uncaught exception.
  void Invoke(Napi::FunctionReference& fn, const std::initializer_list<napi_value>& args) {
    if (fn.IsEmpty()) return;
    Napi::Env env = fn.Env();
    try {
      fn.MakeCallback(Value(), args, asyncContext_ != nullptr ? static_cast<napi_async_context>(*asyncContext_) : nullptr);
    } catch (const Napi::Error& e) {
      napi_fatal_exception(env, e.Value());
    }
  }

  static void OnReadable(uv_poll_t* handle, int status, int events) {
    auto* self = static_cast<NativeSocket*>(handle->data);
    self->Drain(status);
  }

  void Drain(int status) {
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    // A local handle keeps the wrapper (and so `this`) alive even if a callback closes it.
    Napi::Object keepAlive = Value();
    (void)keepAlive;
    if (status < 0) {
      // libuv reports POLLERR as UV_EBADF and stops the handle. On a netlink socket POLLERR
      // means a pending socket error: ENOBUFS when the receive queue overran. Fetch (and
      // clear) it, report it, re-arm the poll and keep reading.
      int soerr = 0;
      socklen_t len = sizeof soerr;
      if (fd_ < 0 || getsockopt(fd_, SOL_SOCKET, SO_ERROR, &soerr, &len) != 0 || soerr == 0) {
        Invoke(onError_, {SysError(env, "uv_poll", -status).Value()});
        return;
      }
      Invoke(onError_, {SysError(env, "recvmsg", soerr).Value()});
      if (fd_ < 0 || poll_ == nullptr) return;
      int rc = uv_poll_start(poll_, UV_READABLE, OnReadable);
      if (rc != 0) {
        Invoke(onError_, {SysError(env, "uv_poll_start", -rc).Value()});
        return;
      }
    }
    // Datagrams read in this wakeup go to JS in ONE call: one Buffer holding them back to back,
    // their lengths and their multicast groups. A JS call, or a Buffer, per datagram costs more
    // than the read itself when ACKs stream in (10,000 ACKs were 10,000 backing stores for the GC).
    // They are read into rx_, which is reused across wakeups, and copied out once per call.
    size_t used = 0;
    Napi::Array lens = Napi::Array::New(env);
    Napi::Array groups = Napi::Array::New(env);
    uint32_t count = 0;
    auto flush = [&]() {
      if (count == 0) return;
      Invoke(onMessage_, {Napi::Buffer<uint8_t>::Copy(env, rx_.data(), used), lens, groups});
      used = 0;
      lens = Napi::Array::New(env);
      groups = Napi::Array::New(env);
      count = 0;
    };
    // A recvmsg failure other than EINTR/EAGAIN: what was read before it is delivered first, to keep
    // the order, then the error. True when reading goes on: ENOBUFS (the kernel dropped messages; JS
    // emits 'overrun') or EMSGSIZE (one datagram lost, reported) with the socket still open.
    auto recvFailed = [&](int err) {
      flush();
      if (fd_ < 0) return false;
      Invoke(onError_, {SysError(env, "recvmsg", err).Value()});
      return (err == ENOBUFS || err == EMSGSIZE) && fd_ >= 0;
    };
    // Bounded batch so a flood of notifications cannot starve the event loop.
    for (int i = 0; i < 256; i++) {
      // Read straight into the free tail of rx_ (no MSG_PEEK to size it first: that was a second
      // syscall per datagram, 10,000 extra for 10,000 ACKs). kMaxDatagram is room for any datagram
      // the kernel sends (dumps are capped at 32 KiB); MSG_TRUNC makes one that still did not fit
      // an error instead of a silently cut message.
      if (rx_.size() < used + kMaxDatagram) rx_.resize(std::max(used + kMaxDatagram, rx_.size() * 2));
      struct iovec iov = {rx_.data() + used, rx_.size() - used};
      union {
        char buf[CMSG_SPACE(sizeof(struct nl_pktinfo))];
        struct cmsghdr align;
      } control;
      struct sockaddr_nl from;
      struct msghdr m;
      memset(&m, 0, sizeof m);
      memset(&from, 0, sizeof from);
      m.msg_name = &from;
      m.msg_namelen = sizeof from;
      m.msg_iov = &iov;
      m.msg_iovlen = 1;
      m.msg_control = control.buf;
      m.msg_controllen = sizeof control.buf;
      ssize_t n;
      do {
        n = recvmsg(fd_, &m, MSG_DONTWAIT | MSG_TRUNC);
      } while (n < 0 && errno == EINTR);
      if (n < 0) {
        int err = errno;
        if (err == EAGAIN || err == EWOULDBLOCK) break;
        if (recvFailed(err)) continue;
        return;
      }
      if ((m.msg_flags & MSG_TRUNC) != 0) {
        // Larger than kMaxDatagram: the rest is gone. Say so (EMSGSIZE) rather than parse a cut message.
        if (recvFailed(EMSGSIZE)) continue;
        return;
      }
      uint32_t group = 0;
      for (struct cmsghdr* c = CMSG_FIRSTHDR(&m); c != nullptr; c = CMSG_NXTHDR(&m, c)) {
        if (c->cmsg_level == SOL_NETLINK && c->cmsg_type == NETLINK_PKTINFO) {
          struct nl_pktinfo pi;
          memcpy(&pi, CMSG_DATA(c), sizeof pi);
          group = pi.group;
        }
      }
      // Datagrams from other userspace ports are not ours to interpret.
      if (from.nl_pid != 0 || n == 0) continue;
      used += static_cast<size_t>(n);
      lens.Set(count, Napi::Number::New(env, static_cast<double>(n)));
      groups.Set(count, Napi::Number::New(env, group));
      count++;
    }
    flush();
    // A burst (a big dump) may have grown the buffer; do not keep more than 1 MiB of it.
    if (rx_.size() > (1u << 20)) {
      rx_.resize(1u << 20);
      rx_.shrink_to_fit();
    }
  }

  // Room left free in rx_ before each read (see Drain).
  static constexpr size_t kMaxDatagram = 256 * 1024;
  // Receive buffer reused across wakeups (see Drain).
  std::vector<uint8_t> rx_ = std::vector<uint8_t>(kMaxDatagram + 64 * 1024);
};

// openInNetns(netnsPath|null, netnsFd, path, flags) -> fd. Opens a file while the calling thread
// is inside the given netns (for /proc/sys/net, whose entries follow the opener's netns), then
// restores the original netns.
Napi::Value OpenInNetnsJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 4 || !info[2].IsString() || !info[3].IsNumber()) {
    throw Napi::TypeError::New(env, "openInNetns(netnsPath, netnsFd, path, flags)");
  }
  NetnsArg ns(env, info[0], info[1]);
  const int nsFd = ns.fd();
  std::string path = info[2].As<Napi::String>().Utf8Value();
  int flags = info[3].As<Napi::Number>().Int32Value() | O_CLOEXEC;
  int orig = -1;
  if (nsFd >= 0) {
    orig = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    if (orig < 0) {
      throw SysError(env, "open", errno, "/proc/thread-self/ns/net");
    }
    if (setns(nsFd, CLONE_NEWNET) != 0) {
      int err = errno;
      close(orig);
      throw SysError(env, "setns", err);
    }
  }
  int fd = open(path.c_str(), flags);
  int openErr = fd < 0 ? errno : 0;
  if (nsFd >= 0) {
    int rc = setns(orig, CLONE_NEWNET);
    int err = errno;
    close(orig);
    if (rc != 0) {
      if (fd >= 0) close(fd);
      throw SysError(env, "setns(restore)", err);
    }
  }
  if (fd < 0) throw SysError(env, "open", openErr, path);
  return Napi::Number::New(env, fd);
}

Napi::Object InitAll(Napi::Env env, Napi::Object exports) {
  exports.Set("openInNetns", Napi::Function::New(env, OpenInNetnsJs, "openInNetns"));
  return NativeSocket::Init(env, exports);
}

}  // namespace

NODE_API_MODULE(veil_netlink, InitAll)
