// UTC calendar months for point lots: lots are bucketed by the month they were earned in and
// expire whole months later. Pure arithmetic on <chrono>; no time zone database.
#pragma once

#include <chrono>
#include <cstdint>

#include "engine/command.hpp"

namespace jifen::engine {

// Months since January 1970 (UTC): 0 = 1970-01. Lots store it in 12 bits (see shard.cpp), so the
// engine accepts times only below time_us_max.
using MonthIndex = uint32_t;

inline constexpr MonthIndex month_index_max = (1u << 12) - 1;  // 2311-04.

// Latest time a command may carry (time_us, until_us): 2300-01-01T00:00:00Z.
inline constexpr TimeUs time_us_max =
    static_cast<TimeUs>(
        std::chrono::sys_days{std::chrono::year{2300} / 1 / 1}.time_since_epoch().count()) *
    86'400ull * 1'000'000ull;

constexpr MonthIndex month_of(TimeUs time_us) noexcept {
    const auto days = std::chrono::sys_days{std::chrono::days{
        static_cast<std::chrono::days::rep>(time_us / (86'400ull * 1'000'000ull))}};
    const std::chrono::year_month_day date{days};
    const int year = static_cast<int>(date.year());
    const unsigned month = static_cast<unsigned>(date.month());
    return static_cast<MonthIndex>((year - 1970) * 12) + month - 1;
}

// The first microsecond of a month.
constexpr TimeUs month_start_us(MonthIndex month) noexcept {
    const std::chrono::year_month_day date{std::chrono::year{1970 + static_cast<int>(month / 12)},
                                           std::chrono::month{month % 12 + 1}, std::chrono::day{1}};
    return static_cast<TimeUs>(std::chrono::sys_days{date}.time_since_epoch().count()) * 86'400ull *
           1'000'000ull;
}

static_assert(month_of(0) == 0);
static_assert(month_of(time_us_max - 1) < month_index_max);
static_assert(month_of(month_start_us(600)) == 600);
static_assert(month_of(month_start_us(600) - 1) == 599);

}  // namespace jifen::engine
