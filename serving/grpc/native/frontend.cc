// The native gRPC front end: grpc++'s async generic server receives every call in C++ and
// hands the calls to Python in bursts, so grpc.aio's per-call machinery (a task, a context and
// several Python frames per call before our handler runs) is not paid (docs/performance.md).
//
// One completion-queue thread serves the listener. A call whose request has been read is queued
// for Python and an eventfd is written when the queue was empty; the event loop reads it and
// takes the whole queue at once (take), runs each call's handler and answers it (finish). The
// handlers, and every rule about requests and errors, stay in Python (serving/grpc/native.py).
//
// Lifetime of a call: created when asked for; deleted by the queue thread when its last
// operation completes: the request ask or read failing (never handed to Python), or the answer
// written. Python answers every call it took exactly once, and never after shutdown() returns.
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <grpc/support/time.h>
#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/grpcpp.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <climits>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace {

// Calls asked for up front: a burst of new calls never waits for a fresh ask.
constexpr int kPendingCalls = 256;

struct Call;

struct Frontend {
  grpc::AsyncGenericService service;
  std::unique_ptr<grpc::ServerCompletionQueue> queue;
  std::unique_ptr<grpc::Server> server;
  std::thread thread;
  std::mutex mutex;
  std::vector<Call*> ready;  // read, waiting for Python
  bool stopping = false;
  int wake_fd = -1;
};

constexpr const char* kCapsule = "digits.native_frontend";

Frontend* frontend_of(PyObject* capsule) {
  return static_cast<Frontend*>(PyCapsule_GetPointer(capsule, kCapsule));
}

struct Call {
  enum class Step { kAsked, kReading, kAnswering };
  grpc::GenericServerContext context;
  grpc::GenericServerAsyncReaderWriter stream{&context};
  grpc::ByteBuffer request;
  Step step = Step::kAsked;
};

void ask(Frontend& f) {
  auto* call = new Call;
  f.service.RequestCall(&call->context, &call->stream, f.queue.get(), f.queue.get(), call);
}

void hand_to_python(Frontend& f, Call* call) {
  bool wake;
  {
    std::lock_guard<std::mutex> lock(f.mutex);
    wake = f.ready.empty();
    f.ready.push_back(call);
  }
  if (wake) {
    uint64_t one = 1;
    ssize_t written = write(f.wake_fd, &one, sizeof one);
    (void)written;  // EAGAIN: the counter is already non-zero, the loop wakes anyway
  }
}

void serve(Frontend& f) {
  void* tag = nullptr;
  bool ok = false;
  while (f.queue->Next(&tag, &ok)) {
    auto* call = static_cast<Call*>(tag);
    switch (call->step) {
      case Call::Step::kAsked:
        if (!ok) {  // shutting down: the ask was never matched with a call
          delete call;
          break;
        }
        {
          std::lock_guard<std::mutex> lock(f.mutex);
          if (!f.stopping) ask(f);
        }
        call->step = Call::Step::kReading;
        call->stream.Read(&call->request, call);
        break;
      case Call::Step::kReading:
        if (!ok) {  // the client went away before sending its request
          call->step = Call::Step::kAnswering;
          call->stream.Finish(grpc::Status::CANCELLED, call);
          break;
        }
        call->step = Call::Step::kAnswering;
        hand_to_python(f, call);
        break;
      case Call::Step::kAnswering:
        delete call;
        break;
    }
  }
}

PyObject* metadata_of(const Call& call) {
  const auto& entries = call.context.client_metadata();
  PyObject* tuple = PyTuple_New(static_cast<Py_ssize_t>(entries.size()));
  if (tuple == nullptr) return nullptr;
  Py_ssize_t i = 0;
  for (const auto& [key, value] : entries) {
    bool binary = key.size() > 4 && std::memcmp(key.data() + key.size() - 4, "-bin", 4) == 0;
    PyObject* item = Py_BuildValue(binary ? "(s#y#)" : "(s#s#)", key.data(),
                                   static_cast<Py_ssize_t>(key.size()), value.data(),
                                   static_cast<Py_ssize_t>(value.size()));
    if (item == nullptr) {
      Py_DECREF(tuple);
      return nullptr;
    }
    PyTuple_SET_ITEM(tuple, i++, item);
  }
  return tuple;
}

PyObject* remaining_of(const Call& call) {
  gpr_timespec deadline = call.context.raw_deadline();
  if (deadline.tv_sec == INT64_MAX) Py_RETURN_NONE;
  gpr_timespec left = gpr_time_sub(gpr_convert_clock_type(deadline, GPR_CLOCK_MONOTONIC),
                                   gpr_now(GPR_CLOCK_MONOTONIC));
  return PyFloat_FromDouble(static_cast<double>(gpr_timespec_to_micros(left)) / 1e6);
}

PyObject* request_bytes(Call& call) {
  std::vector<grpc::Slice> slices;
  if (!call.request.Dump(&slices).ok()) return PyBytes_FromStringAndSize(nullptr, 0);
  size_t size = 0;
  for (const auto& slice : slices) size += slice.size();
  PyObject* bytes = PyBytes_FromStringAndSize(nullptr, static_cast<Py_ssize_t>(size));
  if (bytes == nullptr) return nullptr;
  char* out = PyBytes_AS_STRING(bytes);
  for (const auto& slice : slices) {
    std::memcpy(out, slice.begin(), slice.size());
    out += slice.size();
  }
  return bytes;
}

// start(host, port, options) -> (front end, bound port, eventfd)
// options: ((name, int), ...) channel arguments. Plaintext only (serving/settings.py refuses
// TLS with this front end).
PyObject* start(PyObject*, PyObject* args) {
  const char* host;
  int port;
  PyObject* options;
  if (!PyArg_ParseTuple(args, "siO", &host, &port, &options)) return nullptr;
  grpc::ServerBuilder builder;
  PyObject* items = PySequence_Fast(options, "options must be a sequence");
  if (items == nullptr) return nullptr;
  for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(items); ++i) {
    const char* name;
    int value;
    if (!PyArg_ParseTuple(PySequence_Fast_GET_ITEM(items, i), "si", &name, &value)) {
      Py_DECREF(items);
      return nullptr;
    }
    builder.AddChannelArgument(name, value);
  }
  Py_DECREF(items);
  std::shared_ptr<grpc::ServerCredentials> credentials = grpc::InsecureServerCredentials();
  auto f = std::make_unique<Frontend>();
  int bound = 0;
  builder.AddListeningPort(std::string(host) + ":" + std::to_string(port), credentials, &bound);
  builder.RegisterAsyncGenericService(&f->service);
  f->queue = builder.AddCompletionQueue();
  Py_BEGIN_ALLOW_THREADS
  f->server = builder.BuildAndStart();
  Py_END_ALLOW_THREADS
  if (!f->server || bound == 0) {
    PyErr_Format(PyExc_OSError, "cannot bind gRPC port %s:%d", host, port);
    return nullptr;
  }
  f->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (f->wake_fd < 0) {
    f->server->Shutdown();
    return PyErr_SetFromErrno(PyExc_OSError);
  }
  for (int i = 0; i < kPendingCalls; ++i) ask(*f);
  Frontend* raw = f.release();
  raw->thread = std::thread(serve, std::ref(*raw));
  // Freed by shutdown(), which the Python side always calls; the capsule only points.
  PyObject* capsule = PyCapsule_New(raw, kCapsule, nullptr);
  if (capsule == nullptr) return nullptr;
  return Py_BuildValue("(Nii)", capsule, bound, raw->wake_fd);
}

// take(front end) -> [(call id, method, request bytes, metadata, seconds left or None), ...]
PyObject* take(PyObject*, PyObject* capsule) {
  Frontend* f = frontend_of(capsule);
  if (f == nullptr) return nullptr;
  std::vector<Call*> calls;
  {
    std::lock_guard<std::mutex> lock(f->mutex);
    calls.swap(f->ready);
  }
  PyObject* list = PyList_New(static_cast<Py_ssize_t>(calls.size()));
  if (list == nullptr) return nullptr;
  for (size_t i = 0; i < calls.size(); ++i) {
    Call& call = *calls[i];
    const std::string& method = call.context.method();
    PyObject* item = Py_BuildValue(
        "(Ks#NNN)", static_cast<unsigned long long>(reinterpret_cast<uintptr_t>(&call)),
        method.data(), static_cast<Py_ssize_t>(method.size()), request_bytes(call),
        metadata_of(call), remaining_of(call));
    if (item == nullptr) {  // the call is lost to Python: answer it here
      call.stream.Finish(grpc::Status(grpc::StatusCode::INTERNAL, "front end out of memory"),
                         &call);
      Py_INCREF(Py_None);
      item = Py_None;
      PyErr_Clear();
    }
    PyList_SET_ITEM(list, static_cast<Py_ssize_t>(i), item);
  }
  return list;
}

// finish(call id, code, details, answer bytes, trailing metadata ((key, value), ...))
PyObject* finish(PyObject*, PyObject* args) {
  unsigned long long id;
  int code;
  const char* details;
  Py_ssize_t details_size;
  Py_buffer answer;
  PyObject* trailing;
  if (!PyArg_ParseTuple(args, "Kis#y*O", &id, &code, &details, &details_size, &answer,
                        &trailing))
    return nullptr;
  auto* call = reinterpret_cast<Call*>(static_cast<uintptr_t>(id));
  PyObject* items = PySequence_Fast(trailing, "trailing metadata must be a sequence");
  if (items == nullptr) {
    PyBuffer_Release(&answer);
    return nullptr;
  }
  for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(items); ++i) {
    const char *key, *value;
    Py_ssize_t key_size, value_size;
    if (!PyArg_ParseTuple(PySequence_Fast_GET_ITEM(items, i), "s#s#", &key, &key_size, &value,
                          &value_size)) {
      PyErr_Clear();  // a malformed pair is dropped, the call is still answered
      continue;
    }
    call->context.AddTrailingMetadata(std::string(key, key_size), std::string(value, value_size));
  }
  Py_DECREF(items);
  grpc::Slice slice(answer.buf, static_cast<size_t>(answer.len));
  PyBuffer_Release(&answer);
  grpc::Status status = code == 0 ? grpc::Status::OK
                                  : grpc::Status(static_cast<grpc::StatusCode>(code),
                                                 std::string(details, details_size));
  Py_BEGIN_ALLOW_THREADS
  if (code == 0) {
    grpc::ByteBuffer buffer(&slice, 1);
    call->stream.WriteAndFinish(buffer, grpc::WriteOptions(), status, call);
  } else {
    call->stream.Finish(status, call);
  }
  Py_END_ALLOW_THREADS
  Py_RETURN_NONE;
}

// shutdown(front end, grace seconds): refuse new calls, cancel what is left after the
// grace, stop and free the front end (the capsule must not be used again).
PyObject* shutdown(PyObject*, PyObject* args) {
  PyObject* capsule;
  double grace;
  if (!PyArg_ParseTuple(args, "Od", &capsule, &grace)) return nullptr;
  Frontend* f = frontend_of(capsule);
  if (f == nullptr) return nullptr;
  if (PyCapsule_SetName(capsule, "digits.native_frontend.closed") != 0) return nullptr;
  {
    std::lock_guard<std::mutex> lock(f->mutex);
    f->stopping = true;
  }
  Py_BEGIN_ALLOW_THREADS
  f->server->Shutdown(
      gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                   gpr_time_from_micros(static_cast<int64_t>(grace * 1e6), GPR_TIMESPAN)));
  f->queue->Shutdown();
  f->thread.join();
  Py_END_ALLOW_THREADS
  for (Call* call : f->ready) delete call;  // read, never taken
  close(f->wake_fd);
  delete f;
  Py_RETURN_NONE;
}

PyMethodDef methods[] = {
    {"start", start, METH_VARARGS, "start(host, port, options) -> (front end, port, fd)"},
    {"take", take, METH_O, "take(front end) -> calls read since the last take"},
    {"finish", finish, METH_VARARGS, "finish(call, code, details, answer, trailing)"},
    {"shutdown", shutdown, METH_VARARGS, "shutdown(front end, grace_seconds)"},
    {nullptr, nullptr, 0, nullptr}};

PyModuleDef module = {PyModuleDef_HEAD_INIT, "_native_frontend", nullptr, -1, methods,
                      nullptr, nullptr, nullptr, nullptr};

}  // namespace

PyMODINIT_FUNC PyInit__native_frontend() { return PyModule_Create(&module); }
