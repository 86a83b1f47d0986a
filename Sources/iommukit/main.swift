print("iommukit")
