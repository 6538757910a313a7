// Small pieces the load generators share: a blocking keep-alive HTTP
// connection and percentiles.
#pragma once

#include <algorithm>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <string>
#include <vector>

namespace dray::bench {

// One keep-alive connection; Post() blocks for the answer. Not thread-safe.
class SyncConn {
 public:
  SyncConn(const std::string& host, int port) : host_(host), stream_(ioc_) {
    stream_.connect(boost::asio::ip::tcp::endpoint(boost::asio::ip::make_address(host),
                                                   static_cast<unsigned short>(port)));
    stream_.socket().set_option(boost::asio::ip::tcp::no_delay(true));
  }

  // The answer's body; its status in *status. Throws on a broken connection.
  std::string Post(const std::string& target, const std::string& body, int* status) {
    return Call(boost::beast::http::verb::post, target, body, status);
  }
  std::string Get(const std::string& target, int* status) {
    return Call(boost::beast::http::verb::get, target, "", status);
  }
  std::string Call(boost::beast::http::verb verb, const std::string& target,
                   const std::string& body, int* status) {
    namespace http = boost::beast::http;
    http::request<http::string_body> req{verb, target, 11};
    req.set(http::field::host, host_);
    req.set(http::field::content_type, "application/json");
    req.keep_alive(true);
    req.body() = body;
    req.prepare_payload();
    http::write(stream_, req);
    http::response<http::string_body> res;
    http::read(stream_, buf_, res);
    *status = static_cast<int>(res.result_int());
    return std::move(res.body());
  }

 private:
  std::string host_;
  boost::asio::io_context ioc_;
  boost::beast::tcp_stream stream_;
  boost::beast::flat_buffer buf_;
};

// The p-quantile (0..1) of `v`, which it reorders.
inline double Percentile(std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  std::size_t i = std::min(v.size() - 1, static_cast<std::size_t>(p * static_cast<double>(v.size())));
  std::nth_element(v.begin(), v.begin() + static_cast<long>(i), v.end());
  return v[i];
}

}  // namespace dray::bench
