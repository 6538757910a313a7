// The benchmark workloads against beanstalkd, over its text protocol on
// plain sockets, printing results in the same key=value form as Dray's own
// generators (bench/run.sh reads them):
//
//   dray_beanstalk_load --port 11300 --workload w1-single|w1-batch|w2|w3
//                       [--tasks N] [--seconds S] [--rate R]
//
// - w1-single: --tasks puts, one at a time, over 64 connections (a thread
//   each) → rate=
// - w1-batch: --tasks puts over 4 connections, 1000 puts written at once
//   and their 1000 replies read back: beanstalkd has no bulk put, and
//   pipelining is its bulk → rate=
// - w2: --tasks jobs put first (not timed), then 4 connections each
//   pipeline 256 reserve-with-timeout 0 and the deletes of what they got,
//   until the tube is empty → rate=
// - w3: one connection puts --rate jobs/s for --seconds, each carrying its
//   send time; another waits in reserve, deletes each job → p50= p99= p999= max=
//
// The payload is the same ~100-byte JSON object as Dray's.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

const std::string kPayload =
    R"({"user":12345,"action":"resize","bucket":"photos-eu","object":"2026/11/24/img_0001.jpg","w":640})";

std::int64_t NowUs() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// One blocking connection with a read buffer.
class Conn {
 public:
  explicit Conn(int port) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    if (fd_ < 0) throw std::runtime_error("socket");
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<std::uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
      throw std::runtime_error("connect: " + std::string(std::strerror(errno)));
    }
    int one = 1;
    setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;
  ~Conn() { close(fd_); }

  void Write(const std::string& s) {
    std::size_t off = 0;
    while (off < s.size()) {
      ssize_t n = send(fd_, s.data() + off, s.size() - off, MSG_NOSIGNAL);
      if (n <= 0) throw std::runtime_error("send: " + std::string(std::strerror(errno)));
      off += static_cast<std::size_t>(n);
    }
  }
  // One reply line, without its "\r\n".
  std::string Line() {
    for (;;) {
      std::size_t p = buf_.find("\r\n", pos_);
      if (p != std::string::npos) {
        std::string line = buf_.substr(pos_, p - pos_);
        pos_ = p + 2;
        return line;
      }
      Fill();
    }
  }
  // `n` bytes of job body and its trailing "\r\n".
  std::string Body(std::size_t n) {
    while (buf_.size() - pos_ < n + 2) Fill();
    std::string body = buf_.substr(pos_, n);
    pos_ += n + 2;
    return body;
  }

 private:
  void Fill() {
    if (pos_ > 0 && pos_ == buf_.size()) {
      buf_.clear();
      pos_ = 0;
    } else if (pos_ > 65536) {
      buf_.erase(0, pos_);
      pos_ = 0;
    }
    char tmp[65536];
    ssize_t n = recv(fd_, tmp, sizeof tmp, 0);
    if (n <= 0) throw std::runtime_error("connection closed");
    buf_.append(tmp, static_cast<std::size_t>(n));
  }
  int fd_ = -1;
  std::string buf_;
  std::size_t pos_ = 0;
};

std::string Put(const std::string& body) {
  return "put 0 0 60 " + std::to_string(body.size()) + "\r\n" + body + "\r\n";
}

void ExpectPrefix(const std::string& line, const char* want) {
  if (line.rfind(want, 0) != 0) throw std::runtime_error("unexpected reply: " + line);
}

// Puts `n` jobs over one connection in pipelined rounds of `batch`.
void PutMany(Conn& c, long n, int batch) {
  const std::string one = Put(kPayload);
  for (long done = 0; done < n;) {
    const long k = std::min<long>(batch, n - done);
    std::string out;
    out.reserve(one.size() * static_cast<std::size_t>(k));
    for (long i = 0; i < k; ++i) out += one;
    c.Write(out);
    for (long i = 0; i < k; ++i) ExpectPrefix(c.Line(), "INSERTED");
    done += k;
  }
}

double Percentile(std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  std::size_t i = std::min(v.size() - 1, static_cast<std::size_t>(p * static_cast<double>(v.size())));
  std::nth_element(v.begin(), v.begin() + static_cast<long>(i), v.end());
  return v[i];
}

}  // namespace

int main(int argc, char** argv) {
  int port = 11300;
  std::string workload = "w2";
  long tasks = 100'000;
  int seconds = 20;
  int rate = 1000;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i], v = argv[i + 1];
    if (k == "--port") port = std::atoi(v.c_str());
    else if (k == "--workload") workload = v;
    else if (k == "--tasks") tasks = std::max(1L, std::atol(v.c_str()));
    else if (k == "--seconds") seconds = std::max(1, std::atoi(v.c_str()));
    else if (k == "--rate") rate = std::max(1, std::atoi(v.c_str()));
    else {
      std::fprintf(stderr, "unknown flag %s\n", k.c_str());
      return 2;
    }
  }
  const long cores = sysconf(_SC_NPROCESSORS_ONLN);
  try {
    if (workload == "w1-single" || workload == "w1-batch") {
      const bool single = workload == "w1-single";
      const int conns = single ? 64 : 4;
      std::atomic<long> next{0};
      std::atomic<int> errors{0};
      auto start = Clock::now();
      std::vector<std::thread> threads;
      for (int t = 0; t < conns; ++t) {
        threads.emplace_back([&] {
          try {
            Conn c(port);
            const int batch = single ? 1 : 1000;
            for (;;) {
              long first = next.fetch_add(batch);
              if (first >= tasks) return;
              PutMany(c, std::min<long>(batch, tasks - first), batch);
            }
          } catch (const std::exception& e) {
            std::fprintf(stderr, "%s\n", e.what());
            errors++;
          }
        });
      }
      for (auto& t : threads) t.join();
      double secs = std::chrono::duration<double>(Clock::now() - start).count();
      std::printf("beanstalkd W1 enqueue: tasks=%ld connections=%d %s payload=%zuB cores=%ld\n", tasks,
                  conns, single ? "one put per round trip" : "1000 puts pipelined per round trip",
                  kPayload.size(), cores);
      std::printf("  errors=%d elapsed=%.2fs rate=%.0f tasks/s\n", errors.load(), secs,
                  static_cast<double>(tasks) / secs);
      return errors ? 1 : 0;
    }
    if (workload == "w2") {
      {
        Conn fill(port);
        PutMany(fill, tasks, 1000);
      }
      std::atomic<long> deleted{0};
      std::atomic<int> errors{0};
      auto start = Clock::now();
      std::vector<std::thread> threads;
      for (int t = 0; t < 4; ++t) {
        threads.emplace_back([&] {
          try {
            Conn c(port);
            std::string reserves;
            for (int i = 0; i < 256; ++i) reserves += "reserve-with-timeout 0\r\n";
            for (;;) {
              c.Write(reserves);
              std::vector<std::string> ids;
              for (int i = 0; i < 256; ++i) {
                std::string line = c.Line();
                if (line.rfind("RESERVED ", 0) == 0) {
                  std::size_t sp = line.find(' ', 9);
                  ids.push_back(line.substr(9, sp - 9));
                  c.Body(static_cast<std::size_t>(std::atol(line.c_str() + sp + 1)));
                } else if (line != "TIMED_OUT" && line != "DEADLINE_SOON") {
                  throw std::runtime_error("unexpected reply: " + line);
                }
              }
              if (ids.empty()) return;  // the tube is empty
              std::string deletes;
              for (const std::string& id : ids) deletes += "delete " + id + "\r\n";
              c.Write(deletes);
              for (std::size_t i = 0; i < ids.size(); ++i) ExpectPrefix(c.Line(), "DELETED");
              deleted += static_cast<long>(ids.size());
            }
          } catch (const std::exception& e) {
            std::fprintf(stderr, "%s\n", e.what());
            errors++;
          }
        });
      }
      for (auto& t : threads) t.join();
      double secs = std::chrono::duration<double>(Clock::now() - start).count();
      std::printf("beanstalkd W2 drain: connections=4 reserve+delete pipelined 256 per round trip cores=%ld\n",
                  cores);
      std::printf("  completed=%ld errors=%d elapsed=%.2fs rate=%.0f tasks/s\n", deleted.load(),
                  errors.load(), secs, static_cast<double>(deleted.load()) / secs);
      return errors || deleted.load() != tasks ? 1 : 0;
    }
    if (workload == "w3") {
      const long total = static_cast<long>(rate) * seconds;
      std::vector<double> lat;
      lat.reserve(static_cast<std::size_t>(total));
      std::atomic<bool> failed{false};
      std::thread worker([&] {
        try {
          Conn c(port);
          for (long got = 0; got < total && !failed; ++got) {
            c.Write("reserve\r\n");
            std::string line = c.Line();
            ExpectPrefix(line, "RESERVED ");
            const std::int64_t started = NowUs();
            std::size_t sp = line.find(' ', 9);
            std::string id = line.substr(9, sp - 9);
            std::string body = c.Body(static_cast<std::size_t>(std::atol(line.c_str() + sp + 1)));
            std::size_t t = body.find("\"t\":");
            lat.push_back(static_cast<double>(started - std::atoll(body.c_str() + t + 4)) / 1000.0);
            c.Write("delete " + id + "\r\n");
            ExpectPrefix(c.Line(), "DELETED");
          }
        } catch (const std::exception& e) {
          std::fprintf(stderr, "worker: %s\n", e.what());
          failed = true;
        }
      });
      try {
        Conn c(port);
        const auto start = Clock::now();
        for (long i = 0; i < total && !failed; ++i) {
          std::this_thread::sleep_until(start + std::chrono::microseconds(i * 1'000'000 / rate));
          c.Write(Put(R"({"t":)" + std::to_string(NowUs()) +
                      R"(,"pad":"0123456789012345678901234567890123456789012345678901234567890123456789"})"));
          ExpectPrefix(c.Line(), "INSERTED");
        }
      } catch (const std::exception& e) {
        std::fprintf(stderr, "producer: %s\n", e.what());
        failed = true;
      }
      worker.join();
      std::printf("beanstalkd W3 latency: %d/s for %d s, one worker in reserve cores=%ld\n", rate, seconds,
                  cores);
      std::printf("  submit-to-handler-start ms: p50=%.2f p99=%.2f p999=%.2f max=%.2f\n",
                  Percentile(lat, 0.5), Percentile(lat, 0.99), Percentile(lat, 0.999),
                  Percentile(lat, 1.0));
      return failed ? 1 : 0;
    }
    std::fprintf(stderr, "unknown workload %s\n", workload.c_str());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
}
