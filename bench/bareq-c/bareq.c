/*
 * bareq: a benchmark baseline. The cheapest userspace NFQUEUE verdict there
 * is: Debian's libnetfilter_queue used as its documentation shows, one
 * thread per queue, recv() then one verdict per packet. Every packet is
 * accepted with the given mark (the ruleset's ACCEPTED mark, so the flow is
 * fast-pathed afterwards exactly as after a picoseg verdict).
 *
 * The picoseg benchmark harness builds it with
 *     cc -O2 -o bareq bareq.c -lnetfilter_queue -lpthread
 * and installs picoseg's ruleset before starting it, so that only the
 * consumer differs between the runs it compares.
 *
 * usage: bareq QUEUE_BASE QUEUES MARK
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <linux/netfilter.h>
#include <libnetfilter_queue/libnetfilter_queue.h>

static uint32_t mark;
static pthread_barrier_t bound;

static int cb(struct nfq_q_handle *qh, struct nfgenmsg *msg, struct nfq_data *nfa, void *data)
{
	struct nfqnl_msg_packet_hdr *ph = nfq_get_msg_packet_hdr(nfa);
	uint32_t id = ph ? ntohl(ph->packet_id) : 0;
	(void)msg;
	(void)data;
	if (mark)
		return nfq_set_verdict2(qh, id, NF_ACCEPT, mark, 0, NULL);
	return nfq_set_verdict(qh, id, NF_ACCEPT, 0, NULL);
}

static void *serve(void *arg)
{
	uint16_t num = (uint16_t)(uintptr_t)arg;
	struct nfq_handle *h = nfq_open();
	struct nfq_q_handle *qh;
	char buf[65536] __attribute__((aligned));
	int fd, n, size = 8 << 20;

	if (!h) {
		perror("nfq_open");
		exit(1);
	}
	qh = nfq_create_queue(h, num, &cb, NULL);
	if (!qh) {
		fprintf(stderr, "bareq: cannot bind queue %u\n", num);
		exit(1);
	}
	if (nfq_set_mode(qh, NFQNL_COPY_PACKET, 512) < 0) {
		perror("nfq_set_mode");
		exit(1);
	}
	nfq_set_queue_maxlen(qh, 1024);
	nfq_set_queue_flags(qh, NFQA_CFG_F_FAIL_OPEN | NFQA_CFG_F_GSO, NFQA_CFG_F_FAIL_OPEN | NFQA_CFG_F_GSO);
	fd = nfq_fd(h);
	setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size);
	pthread_barrier_wait(&bound);
	for (;;) {
		n = recv(fd, buf, sizeof buf, 0);
		if (n < 0) {
			if (errno == ENOBUFS || errno == EINTR)
				continue;
			perror("recv");
			exit(1);
		}
		nfq_handle_packet(h, buf, n);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	unsigned base, queues, i;
	pthread_t *t;

	if (argc != 4) {
		fprintf(stderr, "usage: bareq QUEUE_BASE QUEUES MARK\n");
		return 2;
	}
	base = strtoul(argv[1], NULL, 0);
	queues = strtoul(argv[2], NULL, 0);
	mark = strtoul(argv[3], NULL, 0);
	t = calloc(queues, sizeof *t);
	pthread_barrier_init(&bound, NULL, queues + 1);
	for (i = 0; i < queues; i++)
		pthread_create(&t[i], NULL, serve, (void *)(uintptr_t)(base + i));
	/* Every queue is bound once the threads pass the barrier. */
	pthread_barrier_wait(&bound);
	printf("ready\n");
	fflush(stdout);
	for (i = 0; i < queues; i++)
		pthread_join(t[i], NULL);
	return 0;
}
