// Any datagram: the header decoder, every body decoder, and the cluster-key opener.
#include <cstddef>
#include <cstdint>

#include "sync/crypto.hpp"
#include "sync/wire.hpp"

using namespace makuo;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::span<const uint8_t> in(data, size);
  static Sealer sealer({key_from_bytes(std::array<uint8_t, 32>{1})}, 42);
  wire::Bytes opened;
  if (sealer.open(in, opened) == Sealer::Result::Ok) in = opened;
  wire::Header h;
  if (wire::decode_header(in, h) != wire::Error::Ok) return 0;
  auto body = in.subspan(wire::kHeaderSize);
  switch (h.type) {
    case wire::Type::Hello:
    case wire::Type::Heartbeat:
    case wire::Type::Bye: {
      wire::Announce m;
      (void)wire::decode(body, m);
      break;
    }
    case wire::Type::Challenge: {
      wire::Challenge m;
      (void)wire::decode(body, m);
      break;
    }
    case wire::Type::Response: {
      wire::Response m;
      (void)wire::decode(body, m);
      break;
    }
    case wire::Type::Manifest: {
      wire::Manifest m;
      (void)wire::decode(body, m);
      break;
    }
    case wire::Type::Report: {
      wire::Report m;
      (void)wire::decode(body, m);
      break;
    }
    case wire::Type::Data: {
      wire::Data m;
      (void)wire::decode(body, m);
      break;
    }
    case wire::Type::Poll: {
      wire::Poll m;
      (void)wire::decode(body, m);
      break;
    }
    case wire::Type::Nack: {
      wire::Nack m;
      (void)wire::decode(body, m);
      break;
    }
    case wire::Type::End: {
      wire::End m;
      (void)wire::decode(body, m);
      break;
    }
    case wire::Type::DeleteReport: {
      wire::DeleteReport m;
      (void)wire::decode(body, m);
      break;
    }
    case wire::Type::DeleteAck: {
      wire::DeleteAck m;
      (void)wire::decode(body, m);
      break;
    }
  }
  return 0;
}
