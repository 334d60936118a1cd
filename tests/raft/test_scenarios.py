"""Hand-driven Raft scenarios, each a short story on a LocalCluster (in the spirit of etcd's testdata)."""

import pytest

from scribe.errors import NoLeaderError
from scribe.raft import (
    EntryType,
    Message,
    MessageType,
    ProposalDroppedError,
    RaftConfig,
    Role,
)
from scribe.raft.cluster import LocalCluster

ELECTION = 10


def elected(size: int = 3, leader: int = 1, **config) -> LocalCluster:
    cluster = LocalCluster(size, RaftConfig(**config), encode=True)
    cluster.elect(leader)
    assert cluster.leaders() == [leader]
    return cluster


def test_election_from_timeouts_elects_one_leader_and_commits_its_noop() -> None:
    cluster = LocalCluster(3, encode=True)
    cluster.tick(3 * ELECTION)
    assert len(cluster.leaders()) == 1
    leader = cluster.node(cluster.leader())
    for node_id in cluster.ids:
        core = cluster.node(node_id)
        assert core.term == leader.term and core.leader_id == leader.id
        assert [e.type for e in cluster.applied[node_id]] == [EntryType.NOOP]


def test_split_vote_yields_no_leader_then_a_later_term_resolves_it() -> None:
    cluster = LocalCluster(3, RaftConfig(pre_vote=False))
    cluster.isolate(3)
    cluster.node(1).campaign()
    cluster.node(2).campaign()  # both candidates of term 1 vote for themselves
    cluster.stabilize()
    assert cluster.leaders() == []
    assert cluster.node(1).term == cluster.node(2).term == 1
    cluster.heal()
    cluster.tick(4 * ELECTION)
    assert len(cluster.leaders()) == 1
    assert cluster.node(cluster.leader()).term >= 2


def test_follower_votes_once_per_term() -> None:
    cluster = LocalCluster(3, RaftConfig(pre_vote=False))
    cluster.partition([1, 2], [3])
    cluster.elect(1)
    assert cluster.node(2).vote == 1
    term = cluster.node(1).term
    cluster.partition([2, 3], [1])
    # Node 3 campaigns in the same term node 2 already voted in: refused.
    cluster.node(3).term = term - 1
    cluster.node(3).campaign()
    cluster.stabilize()
    assert cluster.node(3).role == Role.CANDIDATE and cluster.node(3).term == term
    assert cluster.node(2).vote == 1


def test_votes_and_append_acks_wait_for_persistence() -> None:
    cluster = LocalCluster(3, RaftConfig(pre_vote=False))
    cluster.node(1).campaign()
    rd = cluster.node(1).ready()
    assert rd.hard_state is not None and rd.hard_state.vote == 1
    # Vote requests depend on our own durable vote: not in this Ready's messages.
    assert not [m for m in rd.messages if m.type == MessageType.VOTE]
    cluster.storages[1].set_hard_state(rd.hard_state)
    cluster.storages[1].sync()
    cluster.node(1).advance(rd)
    rd = cluster.node(1).ready()
    assert {m.to for m in rd.messages if m.type == MessageType.VOTE} == {2, 3}
    cluster.node(1).advance(rd)
    vote = next(m for m in rd.messages if m.to == 2)
    cluster.node(2).step(vote)
    rd2 = cluster.node(2).ready()
    assert rd2.hard_state.vote == 1
    assert not [m for m in rd2.messages if m.type == MessageType.VOTE_RESP]
    cluster.node(2).advance(rd2)
    rd2 = cluster.node(2).ready()
    assert [m.type for m in rd2.messages] == [MessageType.VOTE_RESP]


def test_acks_taken_after_the_fsync_are_not_sent_again() -> None:
    cluster = elected(3)
    cluster.node(1).propose_batch([b"x"])
    rd = cluster.node(1).ready()
    cluster.storages[1].append(rd.entries)
    cluster.storages[1].sync()
    cluster.node(1).advance(rd)
    append = next(m for m in rd.messages if m.to == 2 and m.type == MessageType.APP)
    follower = cluster.node(2)
    follower.step(append)
    rd2 = follower.ready()
    assert rd2.must_sync and not [m for m in rd2.messages if m.type == MessageType.APP_RESP]
    cluster.storages[2].append(rd2.entries)
    cluster.storages[2].sync()
    # Once durable the runtime sends the ack itself, before advance(): it is not handed out again.
    acks = rd2.take_after_sync()
    assert [(m.type, m.to, m.index) for m in acks] == [(MessageType.APP_RESP, 1, append.index + 1)]
    assert rd2.take_after_sync() == []
    follower.advance(rd2)
    assert not follower.has_ready()
    # Not taken: the next Ready hands it out, as before.
    cluster.node(1).propose_batch([b"y"])
    rd = cluster.node(1).ready()
    append = next(m for m in rd.messages if m.to == 2 and m.type == MessageType.APP)
    follower.step(append)
    rd3 = follower.ready()
    assert rd3.must_sync
    cluster.storages[2].append(rd3.entries)
    cluster.storages[2].sync()
    follower.advance(rd3)
    acks = [m for m in follower.ready().messages if m.type == MessageType.APP_RESP]
    assert [m.index for m in acks] == [append.index + 1]


def test_stale_leader_cannot_commit_and_its_entry_is_superseded() -> None:
    cluster = elected(3, leader=1)
    cluster.isolate(1)
    stale = cluster.propose(1, b"lost")
    cluster.tick(3 * ELECTION, nodes=[2, 3])
    new_leader = cluster.leader()
    assert new_leader in (2, 3)
    assert cluster.node(1).commit_index < stale.index
    cluster.propose(new_leader, b"kept")
    cluster.heal()
    cluster.tick(2 * ELECTION)
    assert cluster.node(1).role == Role.FOLLOWER
    entry_terms = cluster.log_terms(1)
    assert entry_terms[stale.index - 1] != stale.term  # a different term there: certainly failed
    for node_id in cluster.ids:
        assert b"lost" not in cluster.applied_data(node_id)
        assert b"kept" in cluster.applied_data(node_id)


def test_follower_with_conflicting_tail_is_repaired_with_few_probes() -> None:
    cluster = elected(3, leader=1)
    for n in range(10):
        cluster.propose(1, b"old-%d" % n)
    cluster.isolate(1)
    for n in range(30):
        cluster.node(1).propose(b"stale-%d" % n)  # never leaves node 1
    cluster.stabilize()
    cluster.tick(3 * ELECTION, nodes=[2, 3])
    for n in range(5):
        cluster.propose(cluster.leader(), b"new-%d" % n)
    other = 5 - cluster.leader()
    cluster.node(cluster.leader()).transfer_leadership(other)  # a third term, longer log
    cluster.stabilize()
    for n in range(5):
        cluster.propose(other, b"newer-%d" % n)
    cluster.sent.clear()
    cluster.heal()
    cluster.tick(2 * ELECTION)
    assert cluster.log_terms(1) == cluster.log_terms(other)
    assert cluster.applied_data(1) == cluster.applied_data(other)
    assert not any(data.startswith(b"stale") for data in cluster.applied_data(1))
    rejects = [m for m in cluster.messages_of(MessageType.APP_RESP) if m.reject and m.frm == 1]
    assert 1 <= len(rejects) <= 3  # the term hint skips the 30 stale entries at once


def test_partitioned_leader_never_answers_reads() -> None:
    cluster = elected(3, leader=1)
    cluster.isolate(1)
    cluster.node(1).read_index(b"r1")
    cluster.tick(2 * ELECTION, nodes=[1])  # check-quorum needs up to two election timeouts
    assert cluster.read_states[1] == []
    assert cluster.node(1).role == Role.FOLLOWER  # check-quorum stepped it down
    with pytest.raises(NoLeaderError):
        cluster.node(1).read_index(b"r2")


def test_read_index_on_leader_and_follower() -> None:
    cluster = elected(3, leader=1)
    p = cluster.propose(1, b"x")
    cluster.node(1).read_index(b"on-leader")
    cluster.node(3).read_index(b"on-follower")
    cluster.stabilize()
    assert [(r.index, r.ctx) for r in cluster.read_states[1]] == [(p.index, b"on-leader")]
    assert [(r.index, r.ctx) for r in cluster.read_states[3]] == [(p.index, b"on-follower")]


def test_a_follower_read_costs_one_round_trip_in_a_three_node_group() -> None:
    """The follower's ReadIndex request, sent in the leader's term, is its ack: with the leader
    that is a quorum, so no heartbeat round; a follower that lags the commit is told it first."""
    cluster = elected(3, leader=1)
    cluster.stabilize()
    cluster.sent.clear()
    p = cluster.node(1).propose(b"x")
    for _ in range(2):  # the entry reaches both followers, their acks reach the leader
        for node_id in cluster.ids:
            while cluster.process_ready(node_id):
                pass
        cluster.deliver()
    assert cluster.node(1).commit_index == p.index > cluster.node(3).commit_index
    cluster.node(3).read_index(b"r")  # before the leader told anyone the new commit index
    cluster.stabilize()
    assert [(r.index, r.ctx) for r in cluster.read_states[3]] == [(p.index, b"r")]
    assert cluster.node(3).commit_index >= p.index
    assert not cluster.messages_of(MessageType.HEARTBEAT)
    (request,) = cluster.messages_of(MessageType.READ_INDEX)
    assert request.term == cluster.node(1).term
    to_3 = [m.type for m in cluster.sent if m.frm == 1 and m.to == 3]
    assert to_3.index(MessageType.APP, 1) < to_3.index(MessageType.READ_INDEX_RESP)


def test_a_read_request_from_another_term_waits_for_a_heartbeat_round() -> None:
    """A request without the leader's term (an older node sends 0) proves nothing about when its
    sender followed this leader: the leader asks a quorum, as for its own reads; so does a
    group where the two of them are not a quorum."""
    cluster = elected(3, leader=1)
    p = cluster.propose(1, b"x")
    cluster.stabilize()
    cluster.sent.clear()
    cluster.node(1).step(Message(MessageType.READ_INDEX, 1, 3, 0, ctx=b"old"))
    cluster.stabilize()
    assert cluster.messages_of(MessageType.HEARTBEAT)
    assert [(r.index, r.ctx) for r in cluster.read_states[3]] == [(p.index, b"old")]
    five = elected(5, leader=1)
    five.sent.clear()
    five.node(4).read_index(b"r5")
    five.stabilize()
    assert five.messages_of(MessageType.HEARTBEAT) and five.read_states[4]


def test_new_leader_delays_reads_until_its_noop_commits() -> None:
    cluster = LocalCluster(3)
    cluster.node(1).campaign()
    # Walk the election by hand until node 1 leads, before its no-op is committed.
    while cluster.node(1).role != Role.LEADER:
        for node_id in cluster.ids:
            cluster.process_ready(node_id)
        cluster.deliver()
    assert cluster.node(1).commit_index < cluster.node(1).last_index
    cluster.node(1).read_index(b"early")
    assert cluster.read_states[1] == []
    cluster.stabilize()
    noop_index = cluster.node(1).last_index
    assert [(r.index, r.ctx) for r in cluster.read_states[1]] == [(noop_index, b"early")]


def test_prevote_keeps_a_rejoining_node_from_disrupting_the_term() -> None:
    cluster = elected(3, leader=1)
    term = cluster.node(1).term
    cluster.isolate(3)
    cluster.tick(5 * ELECTION)
    assert cluster.node(3).term == term  # pre-votes failed, so the term never grew
    cluster.heal()
    cluster.tick(2 * ELECTION)
    assert cluster.leader() == 1 and cluster.node(1).term == term


def test_without_prevote_a_rejoining_node_disrupts_the_term() -> None:
    cluster = elected(3, leader=1, pre_vote=False, check_quorum=False)
    term = cluster.node(1).term
    cluster.isolate(3)
    cluster.tick(5 * ELECTION)
    assert cluster.node(3).term > term
    cluster.heal()
    cluster.tick(3 * ELECTION)
    assert cluster.node(cluster.leader()).term > term  # contrast with the pre-vote test above


def test_check_quorum_leader_steps_down_within_an_election_timeout() -> None:
    cluster = elected(3, leader=1)
    cluster.partition([1], [2, 3])
    ticks = 0
    while cluster.node(1).role == Role.LEADER and ticks < 3 * ELECTION:
        cluster.tick(1, nodes=[1])
        ticks += 1
    assert cluster.node(1).role == Role.FOLLOWER
    assert ticks <= 2 * ELECTION  # the first check may still see activity from before the cut


def test_leadership_transfer_to_an_up_to_date_follower() -> None:
    cluster = elected(3, leader=1)
    cluster.propose(1, b"a")
    term = cluster.node(1).term
    cluster.node(1).transfer_leadership(2)
    with pytest.raises(ProposalDroppedError):
        cluster.node(1).propose(b"during transfer")
    cluster.stabilize()
    assert cluster.leaders() == [2]
    assert cluster.node(2).term == term + 1
    assert cluster.messages_of(MessageType.TIMEOUT_NOW)[0].to == 2


def test_leadership_transfer_to_a_lagging_follower_catches_it_up_first() -> None:
    cluster = elected(3, leader=1)
    cluster.isolate(3)
    for n in range(10):
        cluster.propose(1, b"%d" % n)
    cluster.heal()
    cluster.node(1).transfer_leadership(3)
    cluster.stabilize()
    assert cluster.leaders() == [3]
    assert cluster.applied_data(3) == [b"%d" % n for n in range(10)]


def test_transfer_requested_on_a_follower_goes_to_the_leader() -> None:
    cluster = elected(3, leader=1)
    cluster.node(2).transfer_leadership(3)
    cluster.stabilize()
    assert cluster.leaders() == [3]


def test_node_that_was_down_catches_up() -> None:
    cluster = elected(3, leader=1, max_entries_per_msg=7)
    cluster.crash(3)
    for n in range(50):
        cluster.node(1).propose(b"%d" % n)
    cluster.stabilize()
    assert cluster.node(1).commit_index == 51
    cluster.restart(3)
    cluster.tick(2 * ELECTION)
    assert cluster.log_terms(3) == cluster.log_terms(1)
    assert cluster.applied_data(3) == [b"%d" % n for n in range(50)]


def test_follower_forwards_proposals_and_learns_where_they_landed() -> None:
    cluster = elected(3, leader=1)
    forwarded = cluster.node(2).propose_batch([b"x", b"y"])
    assert forwarded.term == 0 and forwarded.index == 0
    cluster.stabilize()
    [outcome] = cluster.proposals[2]
    assert outcome.request_id == forwarded.request_id
    assert (outcome.term, outcome.count) == (cluster.node(1).term, 2)
    assert cluster.applied[2][outcome.index - 1].data == b"x"


def test_propose_without_a_leader_raises_no_leader() -> None:
    cluster = LocalCluster(3)
    with pytest.raises(NoLeaderError):
        cluster.node(1).propose(b"x")


def test_too_many_uncommitted_entries_are_refused() -> None:
    cluster = elected(3, leader=1, max_pending_proposals=5)
    cluster.isolate(1)
    for n in range(5):
        cluster.node(1).propose(b"%d" % n)
    with pytest.raises(ProposalDroppedError):
        cluster.node(1).propose(b"one too many")


def test_appends_respect_batch_limits_and_the_inflight_window() -> None:
    cluster = elected(
        3, leader=1, max_entries_per_msg=4, max_bytes_per_msg=200, max_inflight_msgs=2
    )
    cluster.inbox.clear()
    for n in range(40):
        cluster.node(1).propose(bytes(30) + b"%d" % n)
    cluster.process_ready(1)
    apps = [m for m in cluster.inbox if m.type == MessageType.APP and m.to == 2]
    assert len(apps) == 2  # the window holds two unacknowledged appends
    for m in apps:
        assert 1 <= len(m.entries) <= 4
        assert sum(len(e.data) + 21 for e in m.entries) <= 200 or len(m.entries) == 1
    cluster.stabilize()
    assert all(cluster.node(i).commit_index == 41 for i in cluster.ids)


def test_single_node_group_commits_alone() -> None:
    cluster = LocalCluster(1)
    cluster.elect(1)
    p = cluster.propose(1, b"solo")
    assert cluster.node(1).commit_index == p.index
    cluster.node(1).read_index(b"r")
    cluster.stabilize()
    assert cluster.read_states[1][0].index == p.index


def test_restart_keeps_term_vote_and_log() -> None:
    cluster = elected(3, leader=1)
    cluster.propose(1, b"a")
    before = (cluster.node(2).term, cluster.node(2).vote, cluster.log_terms(2))
    cluster.crash(2)
    cluster.restart(2)
    assert (cluster.node(2).term, cluster.node(2).vote, cluster.log_terms(2)) == before
    cluster.tick(ELECTION)
    assert cluster.applied_data(2) == [b"a"]


def _committed_without(cluster: LocalCluster, absent: int, count: int) -> None:
    """Commit `count` entries on the leader 1 and node 3 while `absent` hears nothing."""
    cluster.isolate(absent)
    for n in range(count):
        cluster.propose(1, b"w%d" % n)
    cluster.stabilize()
    assert (
        cluster.node(1).commit_index == cluster.node(3).commit_index == cluster.node(1).last_index
    )


def test_a_member_that_lost_its_log_rejoins_and_catches_up() -> None:
    cluster = elected(3, leader=1)
    for n in range(20):
        cluster.propose(1, b"v%d" % n)
    cluster.stabilize()
    cluster.lose_disk(3)
    cluster.restart(3, rejoining=True)
    assert cluster.node(3).rejoining and cluster.node(3).last_index == 0
    cluster.tick(2 * ELECTION)  # heartbeats reach it; the leader probes down to its empty log
    node3, leader = cluster.node(3), cluster.node(1)
    assert cluster.log_terms(3) == cluster.log_terms(1)
    assert node3.commit_index == leader.commit_index == leader.last_index
    assert not node3.rejoining and node3.vote == 1  # a voter again, durably for this leader
    assert cluster.storages[3].hard_state().vote == 1
    cluster.propose(1, b"after")
    cluster.stabilize()
    assert cluster.applied_data(3)[-1] == b"after"


def test_a_rejoining_member_does_not_vote_for_a_candidate_missing_committed_entries() -> None:
    cluster = elected(3, leader=1)
    _committed_without(cluster, absent=2, count=5)
    cluster.lose_disk(3)  # the entries now live on node 1 only, node 2 never had them
    cluster.crash(1)
    cluster.heal()
    cluster.restart(3, rejoining=True)
    cluster.tick(6 * ELECTION)
    assert cluster.leaders() == []  # node 2 cannot win: node 3 abstains, node 1 is down
    cluster.restart(1)
    cluster.tick(6 * ELECTION)
    leader = cluster.leader()
    assert leader == 1  # only node 1 holds the committed entries
    cluster.stabilize()
    assert cluster.applied_data(3)[:5] == [b"w%d" % n for n in range(5)]
    assert not cluster.node(3).rejoining


def test_without_rejoining_a_lost_log_lets_a_stale_candidate_win() -> None:
    """Why rejoining exists: an empty node restarted as a plain voter elects a leader that lacks
    committed entries (contrast with the test above)."""
    cluster = elected(3, leader=1)
    _committed_without(cluster, absent=2, count=5)
    cluster.lose_disk(3)
    cluster.crash(1)
    cluster.heal()
    cluster.restart(3, rejoining=False)
    cluster.tick(6 * ELECTION)
    assert cluster.leaders() == [2]
    assert b"w0" not in cluster.applied_data(2)  # committed writes lost


def test_a_rejoining_member_neither_campaigns_nor_takes_leadership() -> None:
    cluster = elected(3, leader=1)
    cluster.lose_disk(3)
    cluster.restart(3, rejoining=True)
    cluster.isolate(3)
    cluster.tick(6 * ELECTION)
    assert cluster.node(3).role == Role.FOLLOWER and cluster.node(3).term == 0
    cluster.heal()
    cluster.tick(2 * ELECTION)
    assert not cluster.node(3).rejoining
    cluster.node(1).transfer_leadership(3)
    cluster.stabilize()
    cluster.tick(2 * ELECTION)
    assert cluster.leader() == 3  # caught up: a full member again


def _run_readies(cluster: LocalCluster) -> None:
    for node_id in cluster.up():
        while cluster.process_ready(node_id):
            pass


def _deliver_except(cluster: LocalCluster, dropped: MessageType) -> None:
    cluster.inbox = [m for m in cluster.inbox if m.type != dropped]
    cluster.deliver()


def _ready_all(cluster: LocalCluster, node_id: int) -> None:
    while cluster.process_ready(node_id):
        pass


def test_a_forwarding_follower_commits_when_the_leader_says_its_fsync_is_done() -> None:
    """In a 3-node group the leader and the forwarding follower are a quorum: a follower whose
    copy is durable when the leader's word arrives commits its forwarded write at once, before
    the leader hears any ack; a read anywhere afterwards still sees that write."""
    cluster = elected(3, leader=1)
    cluster.stabilize()
    forwarded = cluster.node(2).propose_batch([b"w"])
    _ready_all(cluster, 2)
    cluster.deliver()  # the forward reaches the leader
    assert cluster.process_ready(1)  # append, send, fsync (the durable index waits for advance)
    cluster.deliver()  # the appends and the placement
    _ready_all(cluster, 2)  # the follower's fsync
    _ready_all(cluster, 1)  # the leader's durable index goes out
    _deliver_except(cluster, MessageType.APP_RESP)  # no ack ever reaches the leader
    _ready_all(cluster, 2)
    [outcome] = cluster.proposals[2]
    assert outcome.request_id == forwarded.request_id
    assert cluster.node(1).commit_index < outcome.index <= cluster.node(2).commit_index
    assert [e.data for e in cluster.applied[2] if e.index == outcome.index] == [b"w"]
    notices = [m for m in cluster.messages_of(MessageType.APP) if m.to == 2 and m.hint_index]
    assert notices and max(m.hint_index for m in notices) >= outcome.index
    assert not [m for m in cluster.messages_of(MessageType.APP) if m.to == 3 and m.hint_index]
    assert cluster.node(3).commit_index < outcome.index  # node 3 forwarded nothing: it waits

    cluster.node(3).read_index(b"after")
    cluster.node(1).read_index(b"on-leader")
    cluster.stabilize()  # acks flow again: the leader commits, the reads are served
    assert [(r.index, r.ctx) for r in cluster.read_states[3]] == [(outcome.index, b"after")]
    assert [(r.index, r.ctx) for r in cluster.read_states[1]] == [(outcome.index, b"on-leader")]


def test_the_leaders_word_is_not_kept_for_a_later_fsync() -> None:
    """A durable index that arrives before the follower's own copy is durable is not used when
    that fsync ends (the leader's disk could be gone by then): the leader commits, as before."""
    cluster = elected(3, leader=1)
    cluster.stabilize()
    cluster.node(2).propose_batch([b"w"])
    _ready_all(cluster, 2)
    cluster.deliver()
    _ready_all(cluster, 1)  # appends, fsync, then the durable index: all queued
    _deliver_except(cluster, MessageType.APP_RESP)  # the word arrives before the follower syncs
    _ready_all(cluster, 2)
    _deliver_except(cluster, MessageType.APP_RESP)
    _ready_all(cluster, 2)
    [outcome] = cluster.proposals[2]
    assert cluster.node(2).commit_index < outcome.index
    cluster.stabilize()  # acks reach the leader: it commits and tells the follower
    assert cluster.node(2).commit_index >= outcome.index


def test_a_follower_does_not_commit_alone_when_two_are_not_a_quorum() -> None:
    five = elected(5, leader=1)
    five.stabilize()
    five.node(2).propose_batch([b"w"])
    for _ in range(4):
        _run_readies(five)
        _deliver_except(five, MessageType.APP_RESP)
    [outcome] = five.proposals[2]
    assert five.node(2).commit_index < outcome.index
    assert not [m for m in five.messages_of(MessageType.APP) if m.hint_index]


def test_a_new_commit_index_rides_on_the_next_append_or_a_late_notice() -> None:
    cluster = elected(3, leader=1)
    leader = cluster.node(1)
    first = leader.propose(b"a")
    cluster.stabilize(notices=False)
    assert leader.commit_index == first.index and leader.commit_notice_pending
    # No empty append per commit: the followers have the entry, not yet its commit.
    assert [cluster.node(i).commit_index for i in (2, 3)] == [first.index - 1] * 2
    sent = len(cluster.sent)
    second = leader.propose(b"b")
    cluster.stabilize(notices=False)
    appends = [m for m in cluster.sent[sent:] if m.type == MessageType.APP]
    assert sorted(m.to for m in appends) == [2, 3]
    assert all(m.entries and m.commit == first.index for m in appends)
    assert [cluster.applied_data(i) for i in (2, 3)] == [[b"a"], [b"a"]]
    # The runtime's timer: one empty append per follower says the rest.
    assert leader.commit_notice_pending
    sent = len(cluster.sent)
    leader.send_commit_notice()
    cluster.stabilize(notices=False)
    notices = [m for m in cluster.sent[sent:] if m.type == MessageType.APP]
    assert [(m.to, m.entries, m.commit) for m in notices] == [
        (2, [], second.index),
        (3, [], second.index),
    ]
    assert not leader.commit_notice_pending
    assert [cluster.applied_data(i) for i in (2, 3)] == [[b"a", b"b"]] * 2
    leader.send_commit_notice()  # nothing pending: no message
    assert not leader.has_ready()


@pytest.mark.parametrize("size", [3, 5])
def test_a_forwarded_write_is_told_its_commit_without_waiting_for_a_notice(size: int) -> None:
    cluster = elected(size, leader=1)
    cluster.stabilize()
    cluster.node(2).propose_batch([b"forwarded"])
    cluster.stabilize(notices=False)
    [outcome] = cluster.proposals[2]
    assert cluster.node(2).commit_index >= outcome.index
    assert cluster.applied_data(2) == [b"forwarded"]
    # Only the follower whose client waits hears it at once; the others with the next append.
    others = range(3, size + 1)
    assert all(cluster.node(i).commit_index < outcome.index for i in others)
    assert cluster.node(1).commit_notice_pending
    cluster.stabilize()
    assert all(cluster.applied_data(i) == [b"forwarded"] for i in others)


def test_a_lost_append_ack_is_asked_for_again_on_the_next_heartbeat() -> None:
    # Simulator seed 1700622 (2 nodes): every entry had gone out, the follower's ack was lost,
    # and the leader's empty appends were commit notices, which are not answered: the leader
    # never learned the follower's match, so nothing committed again.
    cluster = elected(2, leader=1)
    cluster.stabilize()
    cluster.blocked.add((2, 1))
    outcome = cluster.propose(1, b"acked, but the ack is lost")
    assert cluster.node(2).last_index == outcome.index
    assert cluster.node(1).commit_index < outcome.index
    cluster.heal()
    cluster.tick(RaftConfig().heartbeat_timeout_ticks)
    assert cluster.node(1).commit_index == outcome.index
    assert cluster.applied_data(1) == [b"acked, but the ack is lost"]


def test_a_rejoining_member_is_not_caught_up_by_a_leader_that_has_not_committed_yet() -> None:
    # Simulator seed 805416: a new leader's first append carried commit 0 (its commit index
    # restarted with it), and the member that had lost its log took itself for caught up with
    # an empty log: it would vote again without the entries it once acknowledged.
    cluster = elected(3, leader=1)
    cluster.stabilize()  # the no-op is committed everywhere; no later fsync persisted that
    for node_id in (1, 2):
        cluster.crash(node_id)
        cluster.restart(node_id)
    cluster.lose_disk(3)
    cluster.restart(3, rejoining=True)
    new_leader = cluster.node(2)
    assert new_leader.commit_index == 0  # volatile: not persisted with every commit
    new_leader.campaign()
    while new_leader.role != Role.LEADER:
        for node_id in (1, 2):
            cluster.process_ready(node_id)
        cluster.deliver(limit=1)
    cluster.process_ready(2)
    first = [m for m in cluster.inbox if m.to == 3]
    assert first and all(m.commit == 0 for m in first)
    for m in first:
        cluster.node(3).step(m)
    assert cluster.node(3).rejoining and cluster.node(3).vote == 0
    cluster.stabilize()  # once the leader commits in its term, the member catches up, then votes
    assert not cluster.node(3).rejoining and cluster.node(3).vote == 2
    assert cluster.log_terms(3) == cluster.log_terms(2) == [1, 2]
