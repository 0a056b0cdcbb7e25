#pragma once
namespace makuo {
inline constexpr const char* kVersion = "0.2.0";
}
