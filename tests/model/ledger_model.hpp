// A plain reference model of the whole ledger (all shards): std::map and loops, written to be
// obviously correct rather than fast. The property test drives it and the engine with the same
// commands and compares every outcome and every member's balances.
#pragma once

#include <cstdint>
#include <map>
#include <utility>
#include <vector>

#include "engine/command.hpp"
#include "engine/config.hpp"
#include "engine/shard.hpp"

namespace jifen::model {

using engine::Command;
using engine::Config;
using engine::MemberId;
using engine::MemberView;
using engine::Outcome;
using engine::Points;
using engine::TimeUs;

class LedgerModel {
public:
    LedgerModel(const Config& config, uint32_t shard_count);

    // Applies a command the way the shard owning command.member_id would (ticks change nothing
    // here: settlement is lazy and a tick only moves it earlier).
    Outcome apply(const Command& command);

    // The member as settling at time_us would leave it; false when not enrolled.
    bool view_at(MemberId member_id, TimeUs time_us, MemberView* view) const;

    std::vector<MemberId> member_ids() const;

private:
    using Key = std::pair<uint64_t, uint64_t>;  // (hi, lo) of a TxnId.

    struct Member {
        MemberView view;  // available (may be negative), held, lifetimes, attributes.
        std::map<uint32_t, Points> lots;   // month -> points; sum == max(available, 0).
        std::map<TimeUs, Points> pending;  // release time -> points.
    };

    enum class State { done, reversed, hold_open, hold_closed, in_flight, refunded };

    struct Txn {
        Command command;  // As first applied (its content is what a repeat must match).
        Outcome outcome;
        State state = State::done;
        // earn: its lot's month; redeem, capture, transfer: the newest month they took points
        // from (where a reversal or refund gives them back); others: the month applied in.
        uint32_t month = 0;
        TimeUs release_us = 0;   // earn: pending until (0 = not pending).
        Points hold_points = 0;  // hold: reserved points.
        TimeUs hold_until_us = 0;
        std::map<uint32_t, Points> hold_lots;  // hold: its points by the month they were earned.
        uint64_t sequence = 0;                 // Order of application (ties of due holds).
    };

    static Key key(engine::TxnId txn_id) { return {txn_id.hi, txn_id.lo}; }
    uint32_t shard_of(MemberId member_id) const;
    uint32_t expiry_limit(TimeUs time_us) const;
    uint32_t lot_month(TimeUs time_us) const;

    Result shape(const Command& command) const;
    bool same_content(const Command& a, const Command& b) const;

    // Settles a member at time_us: due holds and pending points return in the order they fell
    // due (a hold's points to the months they were earned in), a negative balance takes them as
    // they come, old lots expire. With close_holds false it only computes.
    void settle(Member& member, TimeUs time_us, bool close_holds);
    // Expires the member's lots of months below the limit at time_us; returns the points.
    Points expire(Member& member, TimeUs time_us);
    Member settled(const Member& member, TimeUs time_us) const;
    Outcome balances(const Member& member) const;
    Outcome refuse(Result result, const Member* member, TimeUs time_us) const;
    bool over_cap(const Member& settled_member, Points adding) const;

    void credit(Member& member, uint32_t month, Points points);
    // *newest (when given and anything was taken): the month of the last lot taken from.
    Points consume_oldest(Member& member, Points points, uint32_t* newest = nullptr);
    Result claim(const Command& command) const;
    Outcome record(const Command& command, const Outcome& outcome, Txn txn);

    Outcome enroll(const Command& command);
    Outcome update_member(const Command& command);
    Outcome earn(const Command& command);
    Outcome redeem(const Command& command);
    Outcome hold(const Command& command);
    Outcome close_hold(const Command& command);
    Outcome reverse(const Command& command);
    Outcome transfer(const Command& command);
    Outcome transfer_credit(const Command& command);
    Outcome close_transfer(const Command& command);
    Outcome adjust(const Command& command);

    Config config_;
    uint32_t shard_count_;
    std::map<MemberId, Member> members_;
    std::map<Key, Txn> txns_;     // Client transactions, ledger-wide.
    std::map<Key, Txn> credits_;  // Credit legs, by the transfer's id.
    uint64_t applied_ = 0;
};

}  // namespace jifen::model
