# A DynamoDB table for reqwest-dynamodb-cache, and IAM policies for the roles that use it.
# Build the store with `.create_table(false)` when the table is managed here.

terraform {
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.0"
    }
  }
}

variable "table_name" {
  description = "Must match DynamoDbStore::builder().table_name(..)"
  type        = string
  default     = "http_cache"
}

resource "aws_dynamodb_table" "http_cache" {
  name         = var.table_name
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = "key"

  attribute {
    name = "key"
    type = "S"
  }

  # DynamoDB deletes items after their `ttl` (epoch seconds), within a few days.
  # Remove this block if the store is built with `.ttl(false)`.
  ttl {
    attribute_name = "ttl"
    enabled        = true
  }
}

# What the cache needs at run time (with `.create_table(false)`).
data "aws_iam_policy_document" "cache_read_write" {
  statement {
    actions   = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:DeleteItem"]
    resources = [aws_dynamodb_table.http_cache.arn]
  }
}

resource "aws_iam_policy" "cache_read_write" {
  name   = "${var.table_name}-read-write"
  policy = data.aws_iam_policy_document.cache_read_write.json
}

output "table_arn" {
  value = aws_dynamodb_table.http_cache.arn
}
