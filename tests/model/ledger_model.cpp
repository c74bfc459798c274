// The reference ledger: each rule of engine/shard.hpp written out with maps and loops.

#include "tests/model/ledger_model.hpp"

#include <algorithm>
#include <chrono>
#include <iterator>

#include "engine/calendar.hpp"

namespace jifen::model {

using engine::MemberStatus;
using engine::Op;

LedgerModel::LedgerModel(const Config& config, uint32_t shard_count)
    : config_(config), shard_count_(shard_count) {}

uint32_t LedgerModel::shard_of(MemberId member_id) const {
    return engine::Shard::shard_of(member_id, shard_count_);
}

uint32_t LedgerModel::expiry_limit(TimeUs time_us) const {
    if (config_.expiry_months == 0) {
        return 0;
    }
    const uint32_t month = engine::month_of(time_us);
    return month > config_.expiry_months ? month - config_.expiry_months : 0;
}

uint32_t LedgerModel::lot_month(TimeUs time_us) const {
    return config_.expiry_months == 0 ? 0 : engine::month_of(time_us);
}

std::vector<MemberId> LedgerModel::member_ids() const {
    std::vector<MemberId> ids;
    for (const auto& [id, member] : members_) {
        ids.push_back(id);
    }
    return ids;
}

Result LedgerModel::shape(const Command& c) const {
    const auto op = static_cast<uint16_t>(c.op);
    const bool known = (op >= 1 && op <= 10) || (op >= 32 && op <= 35);
    if (!known) {
        return Result::unknown_opcode;
    }
    if (c.reserved0 != 0 || (c.flags != 0 && !(c.op == Op::adjust && c.flags == 1))) {
        return Result::reserved_not_zero;
    }
    if (c.time_us >= engine::time_us_max || c.until_us >= engine::time_us_max) {
        return Result::field_out_of_range;
    }
    if (c.op == Op::tick) {
        return c.points < 0 ? Result::points_not_positive : Result::ok;
    }
    if (c.txn_id.lo == 0 && c.txn_id.hi == 0) {
        return Result::txn_id_zero;
    }
    if (c.member_id == 0) {
        return Result::member_id_zero;
    }
    const auto points_check = [&]() {
        if (c.points <= 0) {
            return Result::points_not_positive;
        }
        if (c.points > engine::points_per_op_max) {
            return Result::points_too_large;
        }
        return Result::ok;
    };
    switch (c.op) {
        case Op::enroll:
        case Op::update_member: {
            bool birthday_ok = c.birthday == 0;
            if (!birthday_ok) {
                const std::chrono::year_month_day date{
                    std::chrono::year{static_cast<int>(c.birthday / 10000)},
                    std::chrono::month{c.birthday / 100 % 100}, std::chrono::day{c.birthday % 100}};
                birthday_ok = c.birthday / 10000 >= 1 && date.ok();
            }
            if (c.points != 0 || static_cast<uint8_t>(c.status) > 1 || !birthday_ok) {
                return Result::field_out_of_range;
            }
            return Result::ok;
        }
        case Op::earn:
        case Op::redeem:
        case Op::adjust:
            return points_check();
        case Op::hold:
            if (points_check() != Result::ok) {
                return points_check();
            }
            if (c.until_us != 0 && c.until_us <= c.time_us) {
                return Result::field_out_of_range;
            }
            return Result::ok;
        case Op::capture:
            if (c.points < 0) {
                return Result::points_not_positive;
            }
            return c.points > engine::points_per_op_max ? Result::points_too_large : Result::ok;
        case Op::release:
        case Op::reverse:
            return c.points != 0 ? Result::field_out_of_range : Result::ok;
        case Op::transfer:
        case Op::transfer_credit:
        case Op::transfer_confirm:
        case Op::transfer_refund:
            if (points_check() != Result::ok) {
                return points_check();
            }
            if (c.counterparty_id == 0) {
                return Result::member_id_zero;
            }
            return c.counterparty_id == c.member_id ? Result::transfer_to_self : Result::ok;
        case Op::tick:
            return Result::ok;
        case Op::hold_timeout:  // Derived records: refused as unknown above.
        case Op::pending_release:
        case Op::expire:
        case Op::transfer_received:
            return Result::unknown_opcode;
    }
    return Result::unknown_opcode;
}

bool LedgerModel::same_content(const Command& a, const Command& b) const {
    if (a.op != b.op || a.member_id != b.member_id || a.counterparty_id != b.counterparty_id ||
        a.points != b.points) {
        return false;
    }
    if (a.op == Op::transfer_credit) {
        return true;
    }
    return a.flags == b.flags && a.tier == b.tier && a.status == b.status &&
           a.ref_txn_id == b.ref_txn_id && a.store_id == b.store_id &&
           a.merchant_id == b.merchant_id && a.reason_code == b.reason_code &&
           a.birthday == b.birthday && a.order_ref == b.order_ref;
}

void LedgerModel::settle(Member& member, TimeUs time_us, bool close_holds) {
    // Due holds by (until_us, order taken); at equal times holds come before pending points.
    std::map<std::pair<TimeUs, uint64_t>, Txn*> due_holds;
    for (auto& [id, txn] : txns_) {
        if (txn.command.op == Op::hold && txn.state == State::hold_open &&
            txn.command.member_id == member.view.member_id && txn.hold_until_us <= time_us) {
            due_holds[{txn.hold_until_us, txn.sequence}] = &txn;
        }
    }
    auto hold = due_holds.begin();
    while (true) {
        const auto pending = member.pending.begin();
        const bool pending_due = pending != member.pending.end() && pending->first <= time_us;
        if (hold != due_holds.end() && (!pending_due || hold->first.first <= pending->first)) {
            Txn& txn = *hold->second;
            for (const auto& [month, points] : txn.hold_lots) {
                credit(member, month, points);
            }
            member.view.held -= txn.hold_points;
            if (close_holds) {
                txn.state = State::hold_closed;
            }
            ++hold;
        } else if (pending_due) {
            credit(member, lot_month(pending->first), pending->second);
            member.pending.erase(pending);
        } else {
            break;
        }
    }
    expire(member, time_us);
    member.view.pending = 0;
    for (const auto& [release, points] : member.pending) {
        member.view.pending += points;
    }
}

Points LedgerModel::expire(Member& member, TimeUs time_us) {
    const uint32_t limit = expiry_limit(time_us);
    Points expired = 0;
    for (auto it = member.lots.begin(); it != member.lots.end();) {
        if (it->first < limit) {
            expired += it->second;
            it = member.lots.erase(it);
        } else {
            ++it;
        }
    }
    member.view.available -= expired;
    member.view.lifetime_expired += expired;
    return expired;
}

LedgerModel::Member LedgerModel::settled(const Member& member, TimeUs time_us) const {
    Member copy = member;
    const_cast<LedgerModel*>(this)->settle(copy, time_us, false);
    return copy;
}

bool LedgerModel::view_at(MemberId member_id, TimeUs time_us, MemberView* view) const {
    const auto it = members_.find(member_id);
    if (it == members_.end()) {
        return false;
    }
    *view = settled(it->second, time_us).view;
    return true;
}

Outcome LedgerModel::balances(const Member& member) const {
    Outcome outcome;
    outcome.available = member.view.available;
    outcome.held = member.view.held;
    outcome.pending = 0;
    for (const auto& [release, points] : member.pending) {
        outcome.pending += points;
    }
    return outcome;
}

Outcome LedgerModel::refuse(Result result, const Member* member, TimeUs time_us) const {
    Outcome outcome;
    if (member != nullptr) {
        outcome = balances(settled(*member, time_us));
    }
    outcome.result = result;
    return outcome;
}

bool LedgerModel::over_cap(const Member& settled_member, Points adding) const {
    const Outcome now = balances(settled_member);
    return now.available + now.held + now.pending + adding > engine::points_balance_max;
}

void LedgerModel::credit(Member& member, uint32_t month, Points points) {
    const Points debt = member.view.available < 0 ? -member.view.available : 0;
    member.view.available += points;
    if (points > debt) {
        member.lots[month] += points - debt;
    }
}

Points LedgerModel::consume_oldest(Member& member, Points points, uint32_t* newest) {
    Points taken = 0;
    while (taken < points && !member.lots.empty()) {
        auto oldest = member.lots.begin();
        const Points take = std::min(oldest->second, points - taken);
        taken += take;
        if (newest != nullptr) {
            *newest = oldest->first;
        }
        oldest->second -= take;
        if (oldest->second == 0) {
            member.lots.erase(oldest);
        }
    }
    return taken;
}

Result LedgerModel::claim(const Command& command) const {
    if (command.op == Op::transfer_credit) {
        return Result::ok;
    }
    // The local table missed, so any client transaction with this id is another shard's.
    return txns_.count(key(command.txn_id)) != 0 ? Result::id_conflict : Result::ok;
}

Outcome LedgerModel::record(const Command& command, const Outcome& outcome, Txn txn) {
    txn.command = command;
    txn.outcome = outcome;
    txn.sequence = ++applied_;
    (command.op == Op::transfer_credit ? credits_ : txns_)[key(command.txn_id)] = txn;
    return outcome;
}

Outcome LedgerModel::apply(const Command& command) {
    const Result result = shape(command);
    if (result != Result::ok) {
        Outcome outcome;
        outcome.result = result;
        return outcome;
    }
    if (command.op == Op::tick) {
        return Outcome{};
    }
    if (command.op == Op::transfer_confirm || command.op == Op::transfer_refund) {
        return close_transfer(command);
    }
    // The shard's own table: client transactions of its members and credits to its members.
    const uint32_t shard = shard_of(command.member_id);
    const Txn* local = nullptr;
    if (const auto it = txns_.find(key(command.txn_id));
        it != txns_.end() && shard_of(it->second.command.member_id) == shard) {
        local = &it->second;
    } else if (const auto credit_it = credits_.find(key(command.txn_id));
               credit_it != credits_.end() &&
               shard_of(credit_it->second.command.member_id) == shard) {
        local = &credit_it->second;
    }
    if (local != nullptr) {
        if (same_content(local->command, command)) {
            if (local->state == State::in_flight) {
                Outcome outcome;  // The transfer's credit leg has not come back yet.
                outcome.result = Result::in_progress;
                return outcome;
            }
            Outcome outcome = local->outcome;
            outcome.replayed = true;
            return outcome;
        }
        Outcome outcome;
        outcome.result = Result::id_conflict;
        return outcome;
    }
    if (command.op == Op::enroll) {
        return enroll(command);
    }
    if (command.op == Op::update_member) {
        return update_member(command);
    }
    if (command.op == Op::earn) {
        return earn(command);
    }
    if (command.op == Op::redeem) {
        return redeem(command);
    }
    if (command.op == Op::hold) {
        return hold(command);
    }
    if (command.op == Op::capture || command.op == Op::release) {
        return close_hold(command);
    }
    if (command.op == Op::reverse) {
        return reverse(command);
    }
    if (command.op == Op::transfer) {
        return transfer(command);
    }
    if (command.op == Op::adjust) {
        return adjust(command);
    }
    return transfer_credit(command);
}

Outcome LedgerModel::enroll(const Command& c) {
    if (const auto it = members_.find(c.member_id); it != members_.end()) {
        const MemberView& view = it->second.view;
        if (view.tier != c.tier || view.status != c.status || view.birthday != c.birthday) {
            return refuse(Result::member_exists, &it->second, c.time_us);
        }
        Outcome outcome = refuse(Result::ok, &it->second, c.time_us);
        outcome.replayed = true;
        return outcome;
    }
    if (claim(c) != Result::ok) {
        return refuse(claim(c), nullptr, c.time_us);
    }
    Member& member = members_[c.member_id];
    member.view.member_id = c.member_id;
    member.view.tier = c.tier;
    member.view.status = c.status;
    member.view.birthday = c.birthday;
    member.view.last_activity_us = c.time_us;
    return record(c, balances(member), Txn{});
}

Outcome LedgerModel::update_member(const Command& c) {
    const auto it = members_.find(c.member_id);
    if (it == members_.end()) {
        return refuse(Result::member_not_found, nullptr, c.time_us);
    }
    Member& member = it->second;
    if (claim(c) != Result::ok) {
        return refuse(claim(c), &member, c.time_us);
    }
    settle(member, c.time_us, true);
    member.view.tier = c.tier;
    member.view.status = c.status;
    member.view.birthday = c.birthday;
    member.view.last_activity_us = std::max(member.view.last_activity_us, c.time_us);
    return record(c, balances(member), Txn{});
}

Outcome LedgerModel::earn(const Command& c) {
    const auto it = members_.find(c.member_id);
    if (it == members_.end()) {
        return refuse(Result::member_not_found, nullptr, c.time_us);
    }
    Member& member = it->second;
    if (member.view.status == MemberStatus::frozen) {
        return refuse(Result::member_frozen, &member, c.time_us);
    }
    if (over_cap(settled(member, c.time_us), c.points)) {
        return refuse(Result::balance_limit, &member, c.time_us);
    }
    if (c.until_us > c.time_us && config_.pending_lots_per_member_max != 0 &&
        !member.pending.contains(c.until_us)) {
        // A release time of its own, and the member's lots still pending at the earn's time
        // (those due by then are released first) already at the limit.
        const auto still_pending =
            std::distance(member.pending.upper_bound(c.time_us), member.pending.end());
        if (static_cast<uint64_t>(still_pending) >= config_.pending_lots_per_member_max) {
            return refuse(Result::member_lot_limit, &member, c.time_us);
        }
    }
    if (claim(c) != Result::ok) {
        return refuse(claim(c), &member, c.time_us);
    }
    settle(member, c.time_us, true);
    Txn txn;
    if (c.until_us > c.time_us) {
        member.pending[c.until_us] += c.points;
        txn.release_us = c.until_us;
        txn.month = lot_month(c.until_us);
    } else {
        txn.month = lot_month(c.time_us);
        credit(member, txn.month, c.points);
    }
    member.view.lifetime_earned += c.points;
    member.view.growth += c.points;
    if (c.order_ref != 0) {
        member.view.last_purchase_us = std::max(member.view.last_purchase_us, c.time_us);
    }
    member.view.last_activity_us = std::max(member.view.last_activity_us, c.time_us);
    Outcome outcome = balances(member);
    outcome.points = c.points;
    return record(c, outcome, txn);
}

Outcome LedgerModel::redeem(const Command& c) {
    const auto it = members_.find(c.member_id);
    if (it == members_.end()) {
        return refuse(Result::member_not_found, nullptr, c.time_us);
    }
    Member& member = it->second;
    if (member.view.status == MemberStatus::frozen) {
        return refuse(Result::member_frozen, &member, c.time_us);
    }
    if (settled(member, c.time_us).view.available < c.points) {
        return refuse(Result::insufficient_points, &member, c.time_us);
    }
    if (claim(c) != Result::ok) {
        return refuse(claim(c), &member, c.time_us);
    }
    settle(member, c.time_us, true);
    Txn txn;
    consume_oldest(member, c.points, &txn.month);  // A reversal gives back to the newest.
    member.view.available -= c.points;
    member.view.lifetime_redeemed += c.points;
    member.view.last_activity_us = std::max(member.view.last_activity_us, c.time_us);
    Outcome outcome = balances(member);
    outcome.points = c.points;
    return record(c, outcome, txn);
}

Outcome LedgerModel::hold(const Command& c) {
    const auto it = members_.find(c.member_id);
    if (it == members_.end()) {
        return refuse(Result::member_not_found, nullptr, c.time_us);
    }
    Member& member = it->second;
    const TimeUs until_us =
        c.until_us == 0 ? c.time_us + config_.hold_timeout_us_default : c.until_us;
    if (until_us - c.time_us > config_.hold_timeout_us_max || until_us >= engine::time_us_max) {
        return refuse(Result::field_out_of_range, nullptr, c.time_us);
    }
    if (member.view.status == MemberStatus::frozen) {
        return refuse(Result::member_frozen, &member, c.time_us);
    }
    if (settled(member, c.time_us).view.available < c.points) {
        return refuse(Result::insufficient_points, &member, c.time_us);
    }
    if (config_.holds_per_member_max != 0) {
        // The member's holds still open at the hold's time: those due by then time out first.
        uint32_t open = 0;
        for (const auto& [id, txn] : txns_) {
            open += txn.command.op == Op::hold && txn.state == State::hold_open &&
                            txn.command.member_id == c.member_id && txn.hold_until_us > c.time_us
                        ? 1
                        : 0;
        }
        if (open >= config_.holds_per_member_max) {
            return refuse(Result::member_hold_limit, &member, c.time_us);
        }
    }
    if (claim(c) != Result::ok) {
        return refuse(claim(c), &member, c.time_us);
    }
    settle(member, c.time_us, true);
    Txn txn;
    for (Points left = c.points; left > 0;) {
        auto oldest = member.lots.begin();
        const Points take = std::min(oldest->second, left);
        txn.hold_lots[oldest->first] += take;
        left -= take;
        oldest->second -= take;
        if (oldest->second == 0) {
            member.lots.erase(oldest);
        }
    }
    member.view.available -= c.points;
    member.view.held += c.points;
    member.view.last_activity_us = std::max(member.view.last_activity_us, c.time_us);
    Outcome outcome = balances(member);
    outcome.points = c.points;
    txn.state = State::hold_open;
    txn.hold_points = c.points;
    txn.hold_until_us = until_us;
    txn.month = engine::month_of(c.time_us);
    return record(c, outcome, txn);
}

Outcome LedgerModel::close_hold(const Command& c) {
    const auto it = members_.find(c.member_id);
    if (it == members_.end()) {
        return refuse(Result::member_not_found, nullptr, c.time_us);
    }
    Member& member = it->second;
    const auto hold_it = txns_.find(key(c.ref_txn_id));
    if (hold_it == txns_.end() || hold_it->second.command.op != Op::hold ||
        hold_it->second.command.member_id != c.member_id) {
        return refuse(Result::hold_not_found, &member, c.time_us);
    }
    Txn& hold_txn = hold_it->second;
    if (hold_txn.state != State::hold_open || hold_txn.hold_until_us <= c.time_us) {
        return refuse(Result::hold_closed, &member, c.time_us);
    }
    const Points hold_points = hold_txn.hold_points;
    const Points captured = c.op == Op::capture ? (c.points == 0 ? hold_points : c.points) : 0;
    if (captured > hold_points) {
        return refuse(Result::capture_exceeds_hold, &member, c.time_us);
    }
    if (claim(c) != Result::ok) {
        return refuse(claim(c), &member, c.time_us);
    }
    settle(member, c.time_us, true);
    hold_txn.state = State::hold_closed;
    member.view.held -= hold_points;
    // The capture spends the oldest held points; the rest go back to their months, and those
    // whose month expired while held expire now.
    Txn txn;
    txn.month = engine::month_of(c.time_us);  // A release's; a capture's is the newest spent.
    Points to_spend = captured;
    for (const auto& [month, points] : hold_txn.hold_lots) {
        const Points spent = std::min(to_spend, points);
        to_spend -= spent;
        if (spent > 0) {
            txn.month = month;
        }
        if (points > spent) {
            credit(member, month, points - spent);
        }
    }
    const Points expired_now = expire(member, c.time_us);
    member.view.lifetime_redeemed += captured;
    member.view.last_activity_us = std::max(member.view.last_activity_us, c.time_us);
    Outcome outcome = balances(member);
    outcome.points = c.op == Op::capture ? captured : hold_points;
    outcome.shortfall = expired_now;
    return record(c, outcome, txn);
}

Outcome LedgerModel::reverse(const Command& c) {
    const auto it = members_.find(c.member_id);
    if (it == members_.end()) {
        return refuse(Result::member_not_found, nullptr, c.time_us);
    }
    Member& member = it->second;
    const auto target_it = txns_.find(key(c.ref_txn_id));
    if (target_it == txns_.end() || target_it->second.command.member_id != c.member_id) {
        return refuse(Result::txn_not_found, &member, c.time_us);
    }
    Txn& target = target_it->second;
    const Op op = target.command.op;
    if (op != Op::earn && op != Op::redeem && op != Op::capture) {
        return refuse(Result::txn_not_reversible, &member, c.time_us);
    }
    if (target.state == State::reversed) {
        return refuse(Result::already_reversed, &member, c.time_us);
    }
    const Points original = target.outcome.points;
    if (op != Op::earn && over_cap(settled(member, c.time_us), original)) {
        return refuse(Result::balance_limit, &member, c.time_us);
    }
    if (claim(c) != Result::ok) {
        return refuse(claim(c), &member, c.time_us);
    }
    settle(member, c.time_us, true);
    target.state = State::reversed;
    Outcome outcome;
    if (op != Op::earn) {
        const uint32_t month =
            config_.expiry_months == 0 ? 0 : std::max(target.month, expiry_limit(c.time_us));
        credit(member, month, original);
        member.view.lifetime_redeemed -= original;
        outcome.points = original;
    } else {
        Points wanted = original;
        Points moved = 0;
        if (target.release_us != 0) {
            const auto pending = member.pending.find(target.release_us);
            if (pending != member.pending.end()) {
                const Points take = std::min(pending->second, wanted);
                pending->second -= take;
                if (pending->second == 0) {
                    member.pending.erase(pending);
                }
                wanted -= take;
                moved += take;
            }
        }
        if (wanted > 0 && member.view.available > 0) {
            Points from_lots = 0;
            const auto lot = member.lots.find(target.month);
            if (lot != member.lots.end()) {
                from_lots = std::min(lot->second, wanted);
                lot->second -= from_lots;
                if (lot->second == 0) {
                    member.lots.erase(lot);
                }
            }
            from_lots += consume_oldest(member, wanted - from_lots);
            member.view.available -= from_lots;
            wanted -= from_lots;
            moved += from_lots;
        }
        if (wanted > 0) {
            if (config_.reverse_allows_negative) {
                member.view.available -= wanted;
                moved += wanted;
            } else {
                outcome.shortfall = wanted;
            }
        }
        member.view.lifetime_reversed += moved;
        member.view.growth -= original;
        outcome.points = moved;
    }
    member.view.last_activity_us = std::max(member.view.last_activity_us, c.time_us);
    const Outcome after = balances(member);
    outcome.available = after.available;
    outcome.held = after.held;
    outcome.pending = after.pending;
    Txn txn;
    txn.month = engine::month_of(c.time_us);
    return record(c, outcome, txn);
}

Outcome LedgerModel::transfer(const Command& c) {
    const auto it = members_.find(c.member_id);
    if (it == members_.end()) {
        return refuse(Result::member_not_found, nullptr, c.time_us);
    }
    Member& sender = it->second;
    if (sender.view.status == MemberStatus::frozen) {
        return refuse(Result::member_frozen, &sender, c.time_us);
    }
    const bool local = shard_of(c.counterparty_id) == shard_of(c.member_id);
    Member* receiver = nullptr;
    if (local) {
        const auto receiver_it = members_.find(c.counterparty_id);
        if (receiver_it == members_.end()) {
            return refuse(Result::member_not_found, &sender, c.time_us);
        }
        receiver = &receiver_it->second;
        if (receiver->view.status == MemberStatus::frozen) {
            return refuse(Result::member_frozen, &sender, c.time_us);
        }
    }
    if (settled(sender, c.time_us).view.available < c.points) {
        return refuse(Result::insufficient_points, &sender, c.time_us);
    }
    if (local && over_cap(settled(*receiver, c.time_us), c.points)) {
        return refuse(Result::balance_limit, &sender, c.time_us);
    }
    if (claim(c) != Result::ok) {
        return refuse(claim(c), &sender, c.time_us);
    }
    settle(sender, c.time_us, true);
    Txn txn;
    consume_oldest(sender, c.points, &txn.month);  // A refund gives back to the newest.
    sender.view.available -= c.points;
    sender.view.last_activity_us = std::max(sender.view.last_activity_us, c.time_us);
    if (local) {
        settle(*receiver, c.time_us, true);
        credit(*receiver, lot_month(c.time_us), c.points);
        receiver->view.last_activity_us = std::max(receiver->view.last_activity_us, c.time_us);
    } else {
        txn.state = State::in_flight;
    }
    Outcome outcome = balances(sender);
    outcome.points = c.points;
    return record(c, outcome, txn);
}

Outcome LedgerModel::transfer_credit(const Command& c) {
    const auto it = members_.find(c.member_id);
    if (it == members_.end()) {
        return refuse(Result::member_not_found, nullptr, c.time_us);
    }
    Member& member = it->second;
    if (member.view.status == MemberStatus::frozen) {
        return refuse(Result::member_frozen, &member, c.time_us);
    }
    if (over_cap(settled(member, c.time_us), c.points)) {
        return refuse(Result::balance_limit, &member, c.time_us);
    }
    settle(member, c.time_us, true);
    credit(member, lot_month(c.time_us), c.points);
    member.view.last_activity_us = std::max(member.view.last_activity_us, c.time_us);
    Outcome outcome = balances(member);
    outcome.points = c.points;
    return record(c, outcome, Txn{});
}

Outcome LedgerModel::close_transfer(const Command& c) {
    const auto it = members_.find(c.member_id);
    if (it == members_.end()) {
        return refuse(Result::member_not_found, nullptr, c.time_us);
    }
    Member& member = it->second;
    const auto target_it = txns_.find(key(c.txn_id));
    if (target_it == txns_.end() || target_it->second.command.op != Op::transfer ||
        target_it->second.command.member_id != c.member_id ||
        target_it->second.command.counterparty_id != c.counterparty_id ||
        target_it->second.outcome.points != c.points) {
        return refuse(Result::txn_not_found, &member, c.time_us);
    }
    Txn& target = target_it->second;
    const bool refund = c.op == Op::transfer_refund;
    if (target.state != State::in_flight) {
        const bool cross = shard_of(c.counterparty_id) != shard_of(c.member_id);
        if (cross && target.state == (refund ? State::refunded : State::done)) {
            Outcome outcome = refuse(Result::ok, &member, c.time_us);
            outcome.replayed = true;
            outcome.points = c.points;
            return outcome;
        }
        return refuse(Result::id_conflict, &member, c.time_us);
    }
    if (!refund) {
        target.state = State::done;
        Outcome outcome = refuse(Result::ok, &member, c.time_us);
        outcome.points = c.points;
        return outcome;
    }
    target.state = State::refunded;
    settle(member, c.time_us, true);
    const uint32_t month =
        config_.expiry_months == 0 ? 0 : std::max(target.month, expiry_limit(c.time_us));
    credit(member, month, c.points);
    member.view.last_activity_us = std::max(member.view.last_activity_us, c.time_us);
    Outcome outcome = balances(member);
    outcome.points = c.points;
    // From now on a repeat of the transfer answers what its client heard.
    target.outcome.result = static_cast<Result>(c.reason_code);
    target.outcome.available = outcome.available;
    target.outcome.held = outcome.held;
    target.outcome.pending = outcome.pending;
    return outcome;
}

Outcome LedgerModel::adjust(const Command& c) {
    const auto it = members_.find(c.member_id);
    if (it == members_.end()) {
        return refuse(Result::member_not_found, nullptr, c.time_us);
    }
    Member& member = it->second;
    const bool debit = (c.flags & engine::adjust_debit) != 0;
    const Member now = settled(member, c.time_us);
    if (debit ? now.view.available < c.points : over_cap(now, c.points)) {
        return refuse(debit ? Result::insufficient_points : Result::balance_limit, &member,
                      c.time_us);
    }
    if (claim(c) != Result::ok) {
        return refuse(claim(c), &member, c.time_us);
    }
    settle(member, c.time_us, true);
    if (debit) {
        consume_oldest(member, c.points);
        member.view.available -= c.points;
    } else {
        credit(member, lot_month(c.time_us), c.points);
    }
    member.view.last_activity_us = std::max(member.view.last_activity_us, c.time_us);
    Outcome outcome = balances(member);
    outcome.points = c.points;
    return record(c, outcome, Txn{});
}

}  // namespace jifen::model
