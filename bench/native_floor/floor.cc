// The C++ transport floor: grpc++'s async generic server answering every call with one fixed
// message (the same bytes bench/floor_server.py answers), parsing nothing and running no model.
// What it costs per call is what a C++ gRPC front end costs before any work of its own: the
// comparison that says what leaving Python per call would buy (docs/performance.md).
//
//   floor --answer FILE [--port 0] [--threads 1]
//
// Prints "floor-server ready grpc=N http=-1 metrics=-1 pid=P" once listening; SIGTERM ends it.
#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace {

// Calls asked for up front, so that a burst of new calls never waits for a fresh request.
constexpr int kPendingCalls = 256;

struct Server {
  grpc::AsyncGenericService service;
  std::unique_ptr<grpc::ServerCompletionQueue> queue;
  std::unique_ptr<grpc::Server> server;
  grpc::Slice answer;
};

// One call's state: asked for, its request read, its answer written.
struct Call {
  enum class Step { kAsked, kRead, kAnswered };
  explicit Call(Server& s) : owner(s), stream(&context) {}
  Server& owner;
  grpc::GenericServerContext context;
  grpc::GenericServerAsyncReaderWriter stream;
  grpc::ByteBuffer request;
  Step step = Step::kAsked;
};

void ask(Server& s) {
  auto* call = new Call(s);
  s.service.RequestCall(&call->context, &call->stream, s.queue.get(), s.queue.get(), call);
}

void serve(Server& s) {
  void* tag = nullptr;
  bool ok = false;
  while (s.queue->Next(&tag, &ok)) {
    auto* call = static_cast<Call*>(tag);
    if (!ok) {  // shutting down, or the client went away
      delete call;
      continue;
    }
    switch (call->step) {
      case Call::Step::kAsked:
        ask(s);
        call->step = Call::Step::kRead;
        call->stream.Read(&call->request, call);
        break;
      case Call::Step::kRead: {
        call->step = Call::Step::kAnswered;
        grpc::ByteBuffer answer(&s.answer, 1);
        call->stream.WriteAndFinish(answer, grpc::WriteOptions(), grpc::Status::OK, call);
        break;
      }
      case Call::Step::kAnswered:
        delete call;
        break;
    }
  }
}

[[noreturn]] void usage(const char* why) {
  std::cerr << "floor: " << why << "\nusage: floor --answer FILE [--port N] [--threads N]\n";
  std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  std::string answer_path;
  int port = 0;
  int threads = 1;
  for (int i = 1; i < argc; ++i) {
    if (i + 1 >= argc) usage("every option takes a value");
    if (!std::strcmp(argv[i], "--answer")) {
      answer_path = argv[++i];
    } else if (!std::strcmp(argv[i], "--port")) {
      port = std::atoi(argv[++i]);
    } else if (!std::strcmp(argv[i], "--threads")) {
      threads = std::atoi(argv[++i]);
    } else {
      usage("unknown option");
    }
  }
  if (answer_path.empty() || threads < 1) usage("--answer is required and --threads >= 1");
  std::ifstream file(answer_path, std::ios::binary);
  if (!file) usage("cannot read the --answer file");
  std::stringstream bytes;
  bytes << file.rdbuf();

  Server s;
  s.answer = grpc::Slice(bytes.str());
  grpc::ServerBuilder builder;
  int bound = 0;
  builder.AddListeningPort("127.0.0.1:" + std::to_string(port),
                           grpc::InsecureServerCredentials(), &bound);
  builder.RegisterAsyncGenericService(&s.service);
  s.queue = builder.AddCompletionQueue();
  s.server = builder.BuildAndStart();
  if (!s.server || bound == 0) {
    std::cerr << "floor: cannot listen on 127.0.0.1:" << port << "\n";
    return 4;
  }
  for (int i = 0; i < kPendingCalls; ++i) ask(s);
  std::printf("floor-server ready grpc=%d http=-1 metrics=-1 pid=%d\n", bound, getpid());
  std::fflush(stdout);
  std::vector<std::thread> workers;
  for (int i = 0; i < threads; ++i) workers.emplace_back(serve, std::ref(s));
  for (auto& worker : workers) worker.join();
  return 0;
}
