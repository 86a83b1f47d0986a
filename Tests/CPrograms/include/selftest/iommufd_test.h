/*
 * IOMMUKit's own "iommufd_test.h": the IOMMU_TEST_CMD interface of a kernel built with
 * CONFIG_IOMMUFD_TEST (the selftest mock), under the names the selftests use, written
 * for IOMMUKit (Sources/IOMMUFDSelftest has the model's side). Not the kernel's header.
 */
#ifndef IOMMUKIT_IOMMUFD_TEST_H
#define IOMMUKIT_IOMMUFD_TEST_H

#include <linux/iommufd.h>

enum {
	IOMMU_TEST_OP_ADD_RESERVED = 1,
	IOMMU_TEST_OP_MOCK_DOMAIN,
	IOMMU_TEST_OP_MD_CHECK_MAP,
	IOMMU_TEST_OP_MD_CHECK_REFS,
	IOMMU_TEST_OP_CREATE_ACCESS,
	IOMMU_TEST_OP_DESTROY_ACCESS_PAGES,
	IOMMU_TEST_OP_ACCESS_PAGES,
	IOMMU_TEST_OP_ACCESS_RW,
	IOMMU_TEST_OP_SET_TEMP_MEMORY_LIMIT,
	IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE,
	IOMMU_TEST_OP_ACCESS_REPLACE_IOAS,
	IOMMU_TEST_OP_MOCK_DOMAIN_FLAGS,
	IOMMU_TEST_OP_DIRTY,
	IOMMU_TEST_OP_MD_CHECK_IOTLB,
	IOMMU_TEST_OP_TRIGGER_IOPF,
	IOMMU_TEST_OP_DEV_CHECK_CACHE,
	IOMMU_TEST_OP_TRIGGER_VEVENT,
};

enum { MOCK_APERTURE_START = 1UL << 24, MOCK_APERTURE_LAST = (1UL << 31) - 1 };
enum { MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES = 1 << 0 };
enum { MOCK_FLAGS_DEVICE_NO_DIRTY = 1 << 0, MOCK_FLAGS_DEVICE_HUGE_IOVA = 1 << 1 };
enum { MOCK_FLAGS_ACCESS_WRITE = 1 << 0 };
enum { MOCK_ACCESS_RW_WRITE = 1 << 0, MOCK_ACCESS_RW_SLOW_PATH = 1 << 2 };

struct iommu_test_cmd {
	__u32 size;
	__u32 op;
	__u32 id;
	__u32 __reserved;
	union {
		struct { __aligned_u64 start, length; } add_reserved;
		struct { __u32 out_stdev_id, out_hwpt_id, out_idev_id; } mock_domain;
		struct { __u32 out_stdev_id, out_hwpt_id, out_idev_id, dev_flags; } mock_domain_flags;
		struct { __u32 pt_id; } mock_domain_replace;
		struct { __aligned_u64 iova, length, uptr; } check_map;
		struct { __aligned_u64 length, uptr; __u32 refs; } check_refs;
		struct { __u32 out_access_fd, flags; } create_access;
		struct { __u32 access_pages_id; } destroy_access_pages;
		struct { __u32 flags, out_access_pages_id; __aligned_u64 iova, length, uptr; } access_pages;
		struct { __aligned_u64 iova, length, uptr; __u32 flags; } access_rw;
		struct { __u32 limit; } memory_limit;
		struct {
			__u32 flags;
			__aligned_u64 iova, length, page_size, uptr, out_nr_dirty;
		} dirty;
		struct { __u32 dev_id, pasid, grpid, perm; __aligned_u64 addr; } trigger_iopf;
		struct { __u32 ioas_id; } access_replace_ioas;
		struct { __u32 id, iotlb; } check_iotlb;
		struct { __u32 id, cache; } check_dev_cache;
		struct { __u32 dev_id; } trigger_vevent;
		struct { __u32 pasid, pt_id; } pasid_attach;   /* id is the stdev */
		struct { __u32 pasid, pt_id; } pasid_replace;  /* id is the stdev */
		struct { __u32 pasid; } pasid_detach;          /* id is the stdev */
		struct { __u32 pasid, hwpt_id; } pasid_check;  /* id is the stdev */
		__u8 payload[48]; /* the union's size in the kernel's layout */
	};
	__u32 last;
};
#define IOMMU_TEST_CMD _IO(IOMMUFD_TYPE, IOMMUFD_CMD_BASE + 32)

/* The mock's vendor data: IOMMU_GET_HW_INFO's, a nested HWPT's, an invalidation entry. */
struct iommu_test_hw_info {
	__u32 flags;
	__u32 test_reg;
};
struct iommu_hwpt_selftest {
	__u32 iotlb;
};
struct iommu_hwpt_invalidate_selftest {
	__u32 flags;
	__u32 iotlb_id;
};

/* The mock's vendor types: nested HWPT data, a vIOMMU, a vEVENTQ. */
#define IOMMU_HWPT_DATA_SELFTEST 0xdead
#define IOMMU_VIOMMU_TYPE_SELFTEST 0xdeadbeef
#define IOMMU_VEVENTQ_TYPE_SELFTEST 0xbeefbeef

/* The mock vIOMMU's data: its allocation data, an invalidation entry, an event. */
struct iommu_viommu_selftest {
	__u32 in_data;
	__u32 out_data;
	__aligned_u64 out_mmap_offset;
	__aligned_u64 out_mmap_length;
};
struct iommu_viommu_invalidate_selftest {
	__u32 flags;
	__u32 vdev_id;
	__u32 cache_id;
};
struct iommu_viommu_event_selftest {
	__u32 virt_id;
};

#endif
